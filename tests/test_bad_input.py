"""Bad input across the library: each case gets a clear error naming the problem and where.

The cases here are the ones the module-level tests do not already cover; docs/reliability.md
lists every case with its error and the test that checks it.
"""

import json
import os
import shutil
import zipfile

import keras
import numpy as np
import pytest

from keras_cmr import saving
from keras_cmr.cli.main import main
from keras_cmr.datasets import (CrossModalDataset, CrossModalSplit, PairBatches, load_npz,
                                load_wikipedia, save_npz)
from keras_cmr.evaluation import evaluate_retrieval, retrieval_metrics
from keras_cmr.losses import ContrastiveLoss
from keras_cmr.models import CrossModalEncoder, PairwiseModel


def split(rng, labels, name, image_dim=5, text_dim=3):
    labels = np.asarray(labels)
    n = len(labels)
    return CrossModalSplit(rng.normal(size=(n, image_dim)), rng.normal(size=(n, text_dim)),
                           labels, name=name)


def small_dataset(rng):
    return CrossModalDataset(split(rng, np.arange(12) % 3, "train"),
                             split(rng, np.arange(6) % 3, "test"), class_names=["a", "b", "c"])


def dataset_arrays(rng, **changes):
    """The arrays of a small valid .npz, with `changes` replacing some of them."""
    arrays = {"image_train": rng.normal(size=(12, 5)), "text_train": rng.normal(size=(12, 3)),
              "label_train": np.arange(12) % 3, "image_test": rng.normal(size=(6, 5)),
              "text_test": rng.normal(size=(6, 3)), "label_test": np.arange(6) % 3}
    return {**arrays, **changes}


# --- a class present in test (or val) but not in training -----------------------------------


def test_a_test_class_missing_from_training_is_refused_with_split_row_and_name(rng):
    train = split(rng, [0, 1, 0, 1, 0, 1], "train")
    test = split(rng, [0, 1, 2, 1], "test")
    with pytest.raises(ValueError, match=r"split 'test' row 2 has class 2 \('c'\), which no "
                                         r"training pair has .*missing from train: \[2\]"):
        CrossModalDataset(train, test, class_names=["a", "b", "c"])
    # A zero-shot protocol opts in, and the choice survives carving and a .npz round trip.
    dataset = CrossModalDataset(train, test, class_names=["a", "b", "c"],
                                allow_unseen_classes=True)
    assert dataset.with_validation(0.5).allow_unseen_classes


def test_a_validation_class_missing_from_training_is_refused_for_multi_hot(rng):
    hot = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 1, 0]])
    with pytest.raises(ValueError, match=r"split 'val' row 1 has class 2, which no training"):
        CrossModalDataset(split(rng, hot, "train"), split(rng, hot, "test"),
                          val=split(rng, [[1, 0, 0], [0, 0, 1]], "val"))


def test_the_unseen_class_opt_in_is_kept_by_save_npz(rng, tmp_path):
    dataset = CrossModalDataset(split(rng, [0, 0, 1, 1], "train"), split(rng, [0, 2], "test"),
                                allow_unseen_classes=True)
    path = save_npz(dataset, str(tmp_path / "zero_shot.npz"))
    assert load_npz(path).allow_unseen_classes
    with pytest.raises(ValueError, match=r"zero_shot\.npz': split 'test' row 1 has class 2"):
        load_npz(path, allow_unseen_classes=False)


# --- empty splits, NaN and wrong kinds inside a data file: the file is named -----------------


@pytest.mark.parametrize("changes, error, match", [
    ({"image_train": np.zeros((0, 5)), "text_train": np.zeros((0, 3)),
      "label_train": np.zeros(0, int)}, ValueError, r"bad\.npz': split 'train' has no pairs"),
    ({"text_test": np.array([[0.0] * 3] * 4 + [[np.nan, 0.0, 0.0]] + [[0.0] * 3])},
     ValueError, r"bad\.npz': text_test has a NaN or infinite value at row 4"),
    ({"label_test": np.array(list("abcabc"))}, TypeError,
     r"bad\.npz': label_test must hold real numbers"),
    ({"label_train": np.arange(12) % 3 + 0.5}, ValueError,
     r"bad\.npz': label_train must be integer-valued, row 0 holds 0\.5"),
    ({"image_test": np.zeros((6, 4))}, ValueError,
     r"bad\.npz': split 'test' has image dim 4 but train has 5"),
])
def test_a_bad_array_in_a_npz_names_the_file_and_the_array(rng, tmp_path, changes, error,
                                                           match):
    path = tmp_path / "bad.npz"
    np.savez(path, **dataset_arrays(rng, **changes))
    with pytest.raises(error, match=match):
        load_npz(str(path))


# --- truncated Wikipedia release files ----------------------------------------------------


@pytest.fixture
def release(wikipedia_dir, tmp_path):
    """A writable copy of the original Wikipedia release (about 1 MB)."""
    copy = tmp_path / "original"
    shutil.copytree(os.path.join(wikipedia_dir, "original"), copy)
    return copy


@pytest.mark.data
def test_a_truncated_mat_file_is_named(release):
    mat = release / "raw_features.mat"
    mat.write_bytes(mat.read_bytes()[:4096])
    with pytest.raises(ValueError, match=r"raw_features\.mat' could not be read as a MAT file "
                                         r"\(truncated or corrupt\?\)"):
        load_wikipedia(str(release))


@pytest.mark.data
def test_a_truncated_list_file_is_named_with_its_line_or_its_count(release):
    listing = release / "testset_txt_img_cat.list"
    lines = listing.read_text().splitlines(keepends=True)
    listing.write_text("".join(lines[:400]) + lines[400][:20])  # cut in the middle of a line
    with pytest.raises(ValueError, match=r"testset_txt_img_cat\.list' line 401: expected "
                                         r".*may be truncated"):
        load_wikipedia(str(release))
    listing.write_text("".join(lines[:400]))  # cut at a line end
    with pytest.raises(ValueError, match=r"has 693 rows in I_te and 693 in T_te, but .*"
                                         r"testset_txt_img_cat\.list' lists 400 pairs"):
        load_wikipedia(str(release))


@pytest.mark.data
def test_a_truncated_categories_file_is_reported_with_the_class_count(release):
    categories = release / "categories.list"
    categories.write_text("\n".join(categories.read_text().splitlines()[:5]))
    with pytest.raises(ValueError, match=r"class in 1\.\.5 \(categories\.list names 5 classes\)"):
        load_wikipedia(str(release))


@pytest.mark.data
def test_a_truncated_wikipedia_npz_is_named(wikipedia_dir, tmp_path):
    data = open(os.path.join(wikipedia_dir, "wikipedia_sift_lda.npz"), "rb").read()
    path = tmp_path / "wikipedia_sift_lda.npz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"wikipedia_sift_lda\.npz' is truncated or corrupt"):
        load_wikipedia(str(path))


# --- batches smaller than 2 ---------------------------------------------------------------


@pytest.mark.parametrize("n, kwargs, match", [
    (10, {"batch_size": 1}, r"batch_size=1: .* a batch needs at least 2 pairs"),
    (9, {"batch_size": 4, "drop_remainder": False},
     r"9 pairs in batches of 4 leave a last batch of a single pair"),
    (1, {"batch_size": 2, "drop_remainder": False}, r"1 pairs in batches of 2 leave a last"),
    (1, {"batch_size": 2}, r"batch_size=2 exceeds the 1 pairs"),
    (10, {"classes_per_batch": 1, "pairs_per_class": 1}, r"1 pair per batch"),
])
def test_a_batch_of_fewer_than_two_pairs_is_refused(n, kwargs, match):
    image, text = np.ones((n, 3)), np.ones((n, 2))
    with pytest.raises(ValueError, match=match):
        PairBatches(image, text, np.arange(n) % 2, **kwargs)


# --- evaluation: arrays of the wrong kind -------------------------------------------------


GOOD = dict(queries=np.ones((3, 4)), query_labels=[0, 1, 2], gallery=np.ones((5, 4)),
            gallery_labels=[0, 1, 2, 0, 1])


@pytest.mark.parametrize("changes, match", [
    ({"queries": [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0], [1.0] * 4]},
     r"`queries` could not be read as an array"),
    ({"gallery": np.ones((5, 4), complex)}, r"`gallery` must hold real numbers, got dtype "
                                            r"complex128"),
    ({"gallery_labels": [[0], [1, 2], [0], [1], [2]]},
     r"`gallery_labels` could not be read as an array"),
])
def test_metrics_refuse_ragged_and_complex_arrays(changes, match):
    with pytest.raises(ValueError, match=match):
        retrieval_metrics(**{**GOOD, **changes})


def test_paired_evaluation_names_the_shared_labels_argument():
    with pytest.raises(ValueError, match=r"`labels` has 3 rows but `text_embeddings` has 4"):
        evaluate_retrieval(np.ones((3, 4)), np.ones((4, 4)), [0, 1, 2])


# --- model files that are not keras_cmr models --------------------------------------------


def test_a_data_archive_renamed_to_keras_is_refused(rng, tmp_path):
    path = tmp_path / "model.keras"
    np.savez(path.with_suffix(".npz"), **dataset_arrays(rng))
    os.replace(path.with_suffix(".npz"), path)
    with pytest.raises(ValueError, match=r"model\.keras' is a zip archive but not a \.keras "
                                         r"model file \(it has no config\.json"):
        saving.load_model(str(path))


def test_a_keras_file_naming_another_library_s_class_is_refused(tmp_path):
    path = tmp_path / "other.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps({
            "module": "otherlib.models", "class_name": "Thing", "config": {},
            "registered_name": "otherlib>Thing"}))
        archive.writestr("metadata.json", json.dumps({"keras_version": keras.__version__}))
    with pytest.raises(ValueError, match=r"could not load .*other\.keras' as a keras_cmr model"
                                         r".*'Thing'"):
        saving.load_model(str(path))


# --- models: mismatched pair counts in fit -------------------------------------------------


def test_fit_with_fewer_labels_than_pairs_is_refused_before_training(rng):
    model = PairwiseModel(CrossModalEncoder.projection(4, hidden_dims=(8,)), ContrastiveLoss())
    model.compile(optimizer="adam")
    x = {"image": rng.normal(size=(8, 5)).astype("float32"),
         "text": rng.normal(size=(8, 3)).astype("float32")}
    with pytest.raises(ValueError, match=r"(?s)8.*\b7\b"):
        model.fit(x, np.arange(7) % 2, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"(?s)8.*\b7\b"):
        model.fit({"image": x["image"], "text": x["text"][:7]}, np.arange(8) % 2, epochs=1,
                  verbose=0)


@pytest.mark.parametrize("change, batch_size, match", [
    (lambda x, y: x["image"].__setitem__((3, 1), np.nan), 4,
     r"image_fit.*row 3"),
    (lambda x, y: y.__setitem__(5, 7), 4, r"fit: row 5 has label 7, outside \[0, 3\)"),
    (lambda x, y: None, 1, "batch_size=1"),
    (lambda x, y: None, 7, "8 pairs in batches of 7 leave a last batch of a single pair"),
])
def test_fit_on_arrays_checks_features_labels_and_batches_first(rng, change, batch_size,
                                                                 match):
    from keras_cmr.models import SourceModel

    model = SourceModel(CrossModalEncoder.projection(4, hidden_dims=(8,)), 3)
    model.compile(optimizer="adam")
    x = {"image": rng.normal(size=(8, 5)).astype("float32"),
         "text": rng.normal(size=(8, 3)).astype("float32")}
    y = np.arange(8) % 3
    change(x, y)
    with pytest.raises(ValueError, match=match):
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    assert not model.built  # refused before any step


def test_features_of_another_width_name_the_tower(rng):
    encoder = CrossModalEncoder.projection(4, hidden_dims=(8,))
    encoder({"image": np.zeros((2, 5), "float32"), "text": np.zeros((2, 3), "float32")})
    with pytest.raises(ValueError, match=r"the image tower cannot embed image inputs of shape "
                                         r"\(3, 32\):.*\b5\b"):
        encoder.encode_image(np.zeros((3, 32), "float32"))
    with pytest.raises(ValueError, match=r"the text tower .* shape \(2, 7\)"):
        encoder.encode_text(np.zeros((2, 7), "float32"))


def test_fit_refuses_fractional_labels(rng):
    model = PairwiseModel(CrossModalEncoder.projection(4, hidden_dims=(8,)), ContrastiveLoss())
    model.compile(optimizer="adam")
    x = {"image": rng.normal(size=(4, 5)).astype("float32"),
         "text": rng.normal(size=(4, 3)).astype("float32")}
    with pytest.raises(ValueError, match="label_fit"):
        model.fit(x, np.array([0, 1.5, 1, 0]), epochs=1, verbose=0)


# --- the command line ----------------------------------------------------------------------


def test_cli_evaluate_refuses_a_data_file_given_as_the_model(rng, tmp_path, capsys):
    path = tmp_path / "data.keras"
    with open(path, "wb") as stream:
        np.savez(stream, **dataset_arrays(rng))
    assert main(["evaluate", str(path)]) == 2
    error = capsys.readouterr().err
    assert "not a .keras model file" in error and "Traceback" not in error


def test_cli_train_names_a_truncated_data_file(rng, tmp_path, capsys):
    path = tmp_path / "data.npz"
    save_npz(small_dataset(rng), str(path))
    path.write_bytes(path.read_bytes()[:200])
    assert main(["train", "--data", f"npz:{path}", "--epochs", "1", "--quiet",
                 "--output", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert "data.npz' is truncated or corrupt" in error and "Traceback" not in error
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "model.keras", "--split", "validation"], "invalid choice: 'validation'"),
    (["train", "--epochs", "ten"], "invalid int value: 'ten'"),
    (["train", "--method", "clip"], "invalid choice: 'clip'"),
])
def test_cli_bad_option_values_exit_with_usage(argv, message, capsys):
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert "usage: keras-cmr" in error and message in error
