"""Saving and loading: atomic writes, safe loading, clear errors for bad files."""

import json
import os

import keras
import numpy as np
import pytest

from keras_cmr import saving
from keras_cmr.models import CrossModalEncoder, PairwiseModel
from keras_cmr.losses import ContrastiveLoss


@pytest.fixture
def encoder(rng):
    model = CrossModalEncoder.projection(4, hidden_dims=(8,))
    model({"image": rng.normal(size=(2, 3)).astype("float32"),
           "text": rng.normal(size=(2, 5)).astype("float32")})
    return model


def test_a_crash_while_saving_leaves_the_old_file_intact(encoder, tmp_path, monkeypatch):
    path = tmp_path / "encoder.keras"
    saving.save_model(encoder, str(path))
    before = path.read_bytes()

    def crash_half_way(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as stream:
            stream.write(b"PK half a file")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(keras.Model, "save", crash_half_way)
    with pytest.raises(KeyboardInterrupt):
        saving.save_model(encoder, str(path))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["encoder.keras"]  # no temporary left behind


def test_json_is_written_atomically(tmp_path):
    path = tmp_path / "figures.json"
    saving.write_json({"avg_map": 0.5}, str(path))
    with pytest.raises(TypeError):
        saving.write_json({"not serializable": object()}, str(path))
    assert json.loads(path.read_text()) == {"avg_map": 0.5}
    assert sorted(os.listdir(tmp_path)) == ["figures.json"]
    # The mode a plain open() gives under the current umask, not the temporary file's 0600.
    plain = tmp_path / "plain"
    plain.write_text("")
    assert (path.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)


def test_save_refuses_a_bad_name_or_an_unbuilt_model(encoder, tmp_path):
    with pytest.raises(ValueError, match="must end in '.keras'"):
        saving.save_model(encoder, str(tmp_path / "encoder.h5"))
    with pytest.raises(ValueError, match="no weights yet"):
        saving.save_model(CrossModalEncoder.projection(4), str(tmp_path / "e.keras"))


def test_load_round_trip_and_kind_check(encoder, tmp_path, rng):
    path = str(tmp_path / "encoder.keras")
    saving.save_model(encoder, path)
    x = rng.normal(size=(3, 3)).astype("float32")
    loaded = saving.load_model(path, expected_class=CrossModalEncoder)
    np.testing.assert_allclose(loaded.encode_image(x), encoder.encode_image(x), atol=1e-6)
    with pytest.raises(TypeError, match="expected PairwiseModel"):
        saving.load_model(path, expected_class=PairwiseModel)


def test_missing_truncated_and_corrupt_files_are_named(encoder, tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file"):
        saving.load_model(str(tmp_path / "absent.keras"))
    good = tmp_path / "encoder.keras"
    saving.save_model(encoder, str(good))
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(ValueError, match="truncated.keras"):
        saving.load_model(str(truncated))
    text = tmp_path / "notes.keras"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not a .keras archive"):
        saving.load_model(str(text))


def test_a_model_from_another_library_is_refused(tmp_path):
    foreign = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = str(tmp_path / "foreign.keras")
    foreign.save(path)
    with pytest.raises(TypeError, match="not a keras_cmr model"):
        saving.load_model(path)


def test_a_file_carrying_a_lambda_is_refused(tmp_path):
    inputs = keras.Input((3,))
    lambda_model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2.0)(inputs))
    path = str(tmp_path / "lambda.keras")
    lambda_model.save(path)
    with pytest.raises(ValueError, match="lambda.keras"):
        saving.load_model(path)


def test_a_keras_cmr_model_of_the_wrong_kind_is_refused(encoder, tmp_path, rng):
    model = PairwiseModel(encoder, ContrastiveLoss())
    model({"image": rng.normal(size=(2, 3)).astype("float32"),
           "text": rng.normal(size=(2, 5)).astype("float32")})
    path = str(tmp_path / "pairwise.keras")
    saving.save_model(model, path)
    with pytest.raises(TypeError, match="holds a PairwiseModel, expected CrossModalEncoder"):
        saving.load_model(path, expected_class=CrossModalEncoder)
