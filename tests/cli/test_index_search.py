"""`keras-cmr index` and `keras-cmr search`: a round trip against numpy, and their errors."""

import json

import numpy as np
import pytest

from keras_cmr import saving
from keras_cmr.cli.main import main
from keras_cmr.datasets import CrossModalDataset, CrossModalSplit, load_dataset
from keras_cmr.datasets.npz import save_npz
from keras_cmr.models import CrossModalEncoder
from keras_cmr.retrieval import load_index

IMAGE_DIM, TEXT_DIM = 6, 5


def make_encoder(path, image_dim=IMAGE_DIM, text_dim=TEXT_DIM, seed=0):
    encoder = CrossModalEncoder.projection(embedding_dim=4, hidden_dims=(), dropout=0.0)
    encoder({"image": np.zeros((1, image_dim)), "text": np.zeros((1, text_dim))})
    rng = np.random.default_rng(seed)
    for weight in encoder.weights:
        weight.assign(rng.normal(size=weight.shape))
    saving.save_model(encoder, str(path))
    return encoder


@pytest.fixture
def data(tmp_path, rng):
    def split(rows, name):
        return CrossModalSplit(rng.normal(size=(rows, IMAGE_DIM)),
                               rng.normal(size=(rows, TEXT_DIM)), rng.integers(0, 3, size=rows),
                               name=name)

    path = tmp_path / "pairs.npz"
    save_npz(CrossModalDataset(train=split(12, "train"), test=split(25, "test"), num_classes=3,
                               name="pairs"), path)
    return path


def numpy_top_k(queries, gallery, k):
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    gallery = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    scores = queries @ gallery.T
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(scores, ids, axis=1)


@pytest.mark.parametrize("kind", ["brute_force", "faiss"])
def test_index_then_search_matches_a_numpy_top_k(tmp_path, data, kind, capsys):
    encoder = make_encoder(tmp_path / "encoder.keras")
    index_dir, results = tmp_path / "text_index", tmp_path / "results.jsonl"
    assert main(["index", str(tmp_path / "encoder.keras"), "--data", str(data), "--split",
                 "test", "--modality", "text", "--out", str(index_dir), "--quiet",
                 *(["--faiss"] if kind == "faiss" else [])]) == 0
    assert load_index(str(index_dir)).ntotal == 25
    assert main(["search", str(index_dir), str(tmp_path / "encoder.keras"), "--queries",
                 str(data), "--modality", "image", "--top-k", "7", "--out", str(results),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"indexed 25 text items of pairs test ({kind}, 4-d)" in printed
    split = load_dataset(str(data)).test
    expected_ids, expected_scores = numpy_top_k(encoder.encode_image(split.image),
                                                encoder.encode_text(split.text), 7)
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert [line["query"] for line in lines] == list(range(25))
    np.testing.assert_array_equal([line["ids"] for line in lines], expected_ids)
    np.testing.assert_allclose([line["scores"] for line in lines], expected_scores, atol=1e-5)
    relevant = split.labels[expected_ids] == split.labels[:, None]
    np.testing.assert_array_equal([line["relevant"] for line in lines], relevant)
    assert f"precision@7 {relevant.mean():.4f}" in printed


def error_of(argv, capsys):
    assert main(argv) == 2
    return capsys.readouterr().err


def test_search_errors_name_the_problem(tmp_path, data, capsys):
    make_encoder(tmp_path / "encoder.keras")
    make_encoder(tmp_path / "other.keras", seed=1)
    make_encoder(tmp_path / "wide.keras", text_dim=TEXT_DIM + 3)
    encoder, index_dir = str(tmp_path / "encoder.keras"), str(tmp_path / "index")
    search = ["--queries", str(data), "--out", str(tmp_path / "r.jsonl"), "--quiet"]

    assert "no saved keras_cmr index at" in error_of(
        ["search", str(tmp_path / "missing"), encoder, *search], capsys)
    assert "the encoder does not fit these text features (5 wide): the text tower cannot " \
           "embed text inputs of shape (25, 5)" in error_of(
        ["index", str(tmp_path / "wide.keras"), "--data", str(data), "--out", index_dir,
         "--quiet"], capsys)
    assert main(["index", encoder, "--data", str(data), "--out", index_dir, "--quiet"]) == 0
    record = json.loads((tmp_path / "index" / "gallery.json").read_text())
    assert record["modality"] == "text" and len(record["encoder_fingerprint"]) == 64
    assert "was built with another encoder" in error_of(
        ["search", index_dir, str(tmp_path / "other.keras"), *search], capsys)
    assert "--top-k must be at least 1" in error_of(
        ["search", index_dir, encoder, *search, "--top-k", "0"], capsys)
    (tmp_path / "index" / "gallery.json").unlink()
    assert "holds an index but no gallery.json" in error_of(
        ["search", index_dir, encoder, *search], capsys)
    assert not (tmp_path / "r.jsonl").exists()
