"""Top-k indexes against a numpy reference: exact ids, chunking, memory maps, save and load."""

import json
import os
import sys

import numpy as np
import pytest

from keras_cmr.retrieval import BruteForceIndex, FaissIndex, load_index


def reference_top_k(queries, gallery, k, normalize=True):
    """float64 scores; best first, equal scores by gallery position (a stable sort)."""
    queries, gallery = queries.astype(np.float64), gallery.astype(np.float64)
    if normalize:
        queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-300)
        gallery = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-300)
    scores = queries @ gallery.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


@pytest.fixture
def data(rng):
    return rng.standard_normal((37, 12)).astype(np.float32), \
        rng.standard_normal((301, 12)).astype(np.float32)


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_brute_force_matches_reference_across_chunks_and_parts(data, metric):
    queries, gallery = data
    index = BruteForceIndex(metric=metric, gallery_chunk_rows=64)
    index.add(gallery[:100])
    index.add(gallery[100:])
    scores, ids = index.search(queries, 7)
    expected_scores, expected_ids = reference_top_k(queries, gallery, 7, metric == "cosine")
    assert scores.shape == ids.shape == (37, 7)
    assert scores.dtype == np.float32 and ids.dtype == np.int64
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-5)


def test_k_above_gallery_size_returns_the_whole_gallery(data):
    queries, gallery = data
    index = BruteForceIndex()
    index.add(gallery[:5])
    scores, ids = index.search(queries, 50)
    assert ids.shape == (37, 5)
    np.testing.assert_array_equal(np.sort(ids, axis=1), np.tile(np.arange(5), (37, 1)))
    assert (np.diff(scores, axis=1) <= 0).all()


def test_duplicate_rows_tie_in_the_order_they_were_added(rng):
    gallery = np.repeat(rng.standard_normal((4, 6)).astype(np.float32), 3, axis=0)
    index = BruteForceIndex(gallery_chunk_rows=5)
    index.add(gallery)
    _, ids = index.search(gallery[[0, 3]], 3)
    np.testing.assert_array_equal(ids, [[0, 1, 2], [3, 4, 5]])


def test_custom_ids_are_returned(data):
    queries, gallery = data
    index = BruteForceIndex()
    index.add(gallery, ids=np.arange(len(gallery)) * 10 + 7)
    _, positions = index.search_positions(queries, 3)
    _, ids = index.search(queries, 3)
    np.testing.assert_array_equal(ids, positions * 10 + 7)


def test_npy_gallery_left_on_disk_equals_in_memory(tmp_path, data):
    queries, gallery = data
    path = str(tmp_path / "gallery.npy")
    np.save(path, gallery)
    mapped = BruteForceIndex(gallery_chunk_rows=50)
    mapped.add_npy(path)
    assert not isinstance(mapped._parts[0][0], np.ndarray)  # left on disk
    in_memory = BruteForceIndex()
    in_memory.add(gallery)
    np.testing.assert_array_equal(mapped.search(queries, 5)[1], in_memory.search(queries, 5)[1])


def test_nan_in_a_gallery_on_disk_names_the_file_and_row(tmp_path, data):
    queries, gallery = data
    gallery = gallery.copy()
    gallery[123, 4] = np.nan
    path = str(tmp_path / "bad.npy")
    np.save(path, gallery)
    index = BruteForceIndex(gallery_chunk_rows=100)
    index.add_npy(path)
    with pytest.raises(ValueError, match=r"bad\.npy.*NaN or inf, first in row 123"):
        index.search(queries, 3)


@pytest.mark.parametrize("on_disk", [True, False])
def test_save_and_load_round_trip(tmp_path, data, on_disk):
    queries, gallery = data
    index = BruteForceIndex(metric="dot")
    index.add(gallery, ids=np.arange(len(gallery)) + 1000)
    directory = str(tmp_path / "index")
    index.save(directory)
    loaded = load_index(directory, on_disk=on_disk)
    assert isinstance(loaded, BruteForceIndex) and loaded.metric == "dot"
    assert (loaded.ntotal, loaded.dim) == (301, 12)
    for got, expected in zip(loaded.search(queries, 4), index.search(queries, 4)):
        np.testing.assert_array_equal(got, expected)


def test_save_replaces_an_index_but_never_another_folder(tmp_path, data):
    _, gallery = data
    directory = tmp_path / "index"
    small = BruteForceIndex()
    small.add(gallery[:10])
    small.save(str(directory))
    big = BruteForceIndex()
    big.add(gallery)
    big.save(str(directory))
    assert load_index(str(directory)).ntotal == 301
    assert sorted(os.listdir(tmp_path)) == ["index"]  # no temporary folder left behind
    other = tmp_path / "results"
    other.mkdir()
    (other / "keep.txt").write_text("precious")
    with pytest.raises(ValueError, match="not a saved keras_cmr index"):
        big.save(str(other))
    assert (other / "keep.txt").read_text() == "precious"


def test_load_refuses_missing_corrupt_and_inconsistent_folders(tmp_path, data):
    _, gallery = data
    with pytest.raises(FileNotFoundError, match="no saved keras_cmr index"):
        load_index(str(tmp_path / "nothing"))
    index = BruteForceIndex()
    index.add(gallery)
    directory = tmp_path / "index"
    index.save(str(directory))
    config = json.loads((directory / "index.json").read_text())
    (directory / "index.json").write_text(json.dumps({**config, "kind": "annoy"}))
    with pytest.raises(ValueError, match="not a readable keras_cmr index: KeyError"):
        load_index(str(directory))
    (directory / "index.json").write_text(json.dumps({**config, "ntotal": 5}))
    with pytest.raises(ValueError, match="inconsistent: ids.npy holds 301 ids"):
        load_index(str(directory))
    (directory / "index.json").write_text(json.dumps(config))
    (directory / "embeddings.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match="embeddings.npy"):
        load_index(str(directory))


def test_bad_arguments_are_refused(data):
    queries, gallery = data
    index = BruteForceIndex()
    with pytest.raises(ValueError, match="the index is empty"):
        index.search(queries, 3)
    with pytest.raises(ValueError, match="`metric` must be one of"):
        BruteForceIndex(metric="l2")
    index.add(gallery)
    with pytest.raises(ValueError, match="`queries` has 5 dims, the index holds 12-d"):
        index.search(queries[:, :5], 3)
    with pytest.raises(ValueError, match="`embeddings` has 3 dims"):
        index.add(gallery[:, :3])
    with pytest.raises(ValueError, match=r"`k` must be an integer >= 1, got 0"):
        index.search(queries, 0)
    bad = queries.copy()
    bad[2, 0] = np.inf
    with pytest.raises(ValueError, match="`queries` holds NaN or inf, first in row 2"):
        index.search(bad, 3)
    with pytest.raises(ValueError, match="`ids` must be 4 integers"):
        index.add(gallery[:4], ids=[1, 2, 3])
    with pytest.raises(FileNotFoundError, match="no .npy file"):
        index.add_npy("/nonexistent/gallery.npy")


def test_bad_npy_files_are_refused_on_add(tmp_path, data):
    _, gallery = data
    index = BruteForceIndex()
    np.save(tmp_path / "wide.npy", gallery[:, :3])
    index.add(gallery)
    with pytest.raises(ValueError, match="holds 3-d rows, the index holds 12-d"):
        index.add_npy(str(tmp_path / "wide.npy"))
    np.save(tmp_path / "flat.npy", gallery[0])
    with pytest.raises(ValueError, match="must hold a non-empty 2-D C-order array"):
        index.add_npy(str(tmp_path / "flat.npy"))
    np.save(tmp_path / "whole.npy", gallery)
    content = (tmp_path / "whole.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(content[:-100])
    with pytest.raises(ValueError, match="cut.npy' is truncated"):
        index.add_npy(str(tmp_path / "cut.npy"))
    (tmp_path / "text.npy").write_text("not an array")
    with pytest.raises(ValueError, match="text.npy' is not a readable .npy array"):
        index.add_npy(str(tmp_path / "text.npy"))


def test_faiss_index_matches_brute_force_and_round_trips(tmp_path, data):
    queries, gallery = data
    brute = BruteForceIndex()
    brute.add(gallery)
    index = FaissIndex()
    index.add(gallery[:150])
    index.add(gallery[150:])
    scores, ids = index.search(queries, 6)
    expected_scores, expected_ids = brute.search(queries, 6)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    index.save(str(tmp_path / "faiss"))
    loaded = load_index(str(tmp_path / "faiss"))
    assert isinstance(loaded, FaissIndex)
    np.testing.assert_array_equal(loaded.search(queries, 6)[1], expected_ids)


def test_faiss_missing_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        FaissIndex()


@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_cosine_is_scale_invariant_at_extreme_magnitudes(data, scale):
    queries, gallery = data
    index = BruteForceIndex()
    index.add(gallery)
    scaled = BruteForceIndex()
    scaled.add(gallery * np.float32(scale))
    expected_scores, expected_ids = index.search(queries, 5)
    scores, ids = scaled.search(queries * np.float32(scale), 5)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-6)
