"""MRL as a registered method: its model's loss wiring, training, saving, the protocol run and
MRL as the source of a transfer."""

import dataclasses

import keras
import numpy as np
import pytest

from keras_cmr import experiment, methods
from keras_cmr.datasets import load_digits_two_view
from keras_cmr.experiment import TrainingConfig, compare
from keras_cmr.layers import CosineClassifier
from keras_cmr.losses import mrl
from keras_cmr.losses.mrl import MRL_BETA, MRL_TEMPERATURE
from keras_cmr.models import CrossModalEncoder, MRLModel

NUM_CLASSES = 4  # the classes of the `pairs` fixture (tests/conftest.py)
FAST = TrainingConfig(epochs=2, patience=1, embedding_dim=8, hidden_dims=(8,), verbose=0)


def encoder(dropout=0.0):
    return CrossModalEncoder.projection(8, hidden_dims=(16,), dropout=dropout)


def test_the_registered_method_builds_mrl_with_its_code_defaults():
    assert (MRL_BETA, MRL_TEMPERATURE) == (0.5, 1.0)  # MRL's utils/config.py: --beta, --tau
    method = methods.get("mrl")
    assert not method.needs_source and method.serves_as_source and method.fit is None
    assert "Hu et al., CVPR 2021" in method.description
    model = method.build(encoder(), NUM_CLASSES, FAST, None)
    assert type(model) is MRLModel
    assert (model.num_classes, model.beta, model.temperature) == (NUM_CLASSES, 0.5, 1.0)
    assert isinstance(model.classifier, CosineClassifier) and model.classifier.scale == 1.0


def test_training_loss_is_mrl_of_the_embeddings_and_cosine_logits(pairs):
    x, y = pairs
    model = MRLModel(encoder(), NUM_CLASSES, beta=0.7, temperature=0.5)
    embeddings = model(x)
    logits = {key: model.classifier(embeddings[key]) for key in ("image", "text")}
    for value in logits.values():  # cosines: at most 1 in magnitude
        assert np.abs(keras.ops.convert_to_numpy(value)).max() <= 1.0 + 1e-6
    expected = np.mean(keras.ops.convert_to_numpy(mrl(
        embeddings["image"], embeddings["text"], logits["image"], logits["text"], labels=y,
        beta=0.7, temperature=0.5)))
    got = keras.ops.convert_to_numpy(model.compute_loss(x, y, embeddings))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_fit_then_keras_round_trip_predicts_the_same_and_continues_training(pairs, tmp_path):
    x, y = pairs
    keras.utils.set_random_seed(0)
    model = MRLModel(encoder(), NUM_CLASSES, beta=0.6, temperature=0.5)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x, y, batch_size=20, epochs=4, verbose=0).history["loss"]
    assert np.all(np.isfinite(history)) and history[-1] < history[0], history
    original = model.predict(x, verbose=0)
    np.testing.assert_allclose(np.linalg.norm(original["image"], axis=1), 1.0, atol=1e-5)

    restored = MRLModel.from_config(model.get_config())
    assert restored.get_config() == model.get_config()
    path = str(tmp_path / "mrl.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects: import keras_cmr suffices
    assert type(loaded) is MRLModel
    assert (loaded.num_classes, loaded.beta, loaded.temperature) == (NUM_CLASSES, 0.6, 0.5)
    for key in ("image", "text"):
        np.testing.assert_allclose(loaded.predict(x, verbose=0)[key], original[key], atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded.classifier.class_weights),
                               keras.ops.convert_to_numpy(model.classifier.class_weights))
    # The same next step from the same state gives the same weights.
    model.fit(x, y, batch_size=40, epochs=1, verbose=0, shuffle=False)
    loaded.fit(x, y, batch_size=40, epochs=1, verbose=0, shuffle=False)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 9
    np.testing.assert_allclose(loaded.predict(x, verbose=0)["image"],
                               model.predict(x, verbose=0)["image"], atol=1e-5)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="beta must be in \\[0, 1\\]"):
        MRLModel(encoder(), NUM_CLASSES, beta=2.0)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        MRLModel(encoder(), NUM_CLASSES, temperature=0.0)
    with pytest.raises(ValueError, match="`num_classes` must be at least 2"):
        MRLModel(encoder(), 1)


def test_mrl_runs_through_the_protocol():
    model, result = experiment.run_method("mrl", load_digits_two_view(), FAST, seed=0)
    assert type(model) is MRLModel
    losses = result.history["mrl"]["loss"]
    assert result.epochs == len(losses) >= 1 and np.all(np.isfinite(losses))
    assert 0.0 < result.test["avg_map"] <= 1.0


def test_met_transfers_from_an_mrl_source_whether_trained_for_it_or_listed_before_it():
    config = dataclasses.replace(FAST, source_method="mrl", label_noise={"rate": 0.4})
    data = load_digits_two_view()
    [alone] = compare(["met"], data, config, seeds=1, log=None)
    assert 0.0 < alone.test["avg_map"] <= 1.0 and "source" in alone.history
    listed = compare(["mrl", "met"], data, config, seeds=1, log=None)
    assert [result.method for result in listed] == ["mrl", "met"]
    # The listed MRL model is the source MET would have trained alone: the same figures.
    assert listed[1].test == alone.test and listed[1].best_val_avg_map == alone.best_val_avg_map
    assert listed[0].history["mrl"] == alone.history["source"]


def test_mrl_options_come_from_the_config_and_default_to_the_loss_defaults():
    from keras_cmr.methods.robust import MRLOptions

    assert MRLOptions() == MRLOptions(beta=MRL_BETA, temperature=MRL_TEMPERATURE)
    config = TrainingConfig(method_options={"mrl": {"beta": 0.7, "temperature": 0.5}})
    model = methods.get("mrl").build(encoder(), NUM_CLASSES, config, None)
    assert (model.beta, model.temperature) == (0.7, 0.5)
    with pytest.raises(ValueError, match=r"`method_options` of 'mrl': beta must be in \[0, 1\]; "
                                         r"received beta=1.5"):
        TrainingConfig(method_options={"mrl": {"beta": 1.5}})
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['tau'\]; known: "
                                         r"\['beta', 'temperature'\]"):
        TrainingConfig(method_options={"mrl": {"tau": 1.0}})
