"""BruteForceIndex's two paths (host BLAS, Keras backend) against a numpy argsort, and its cache."""

import numpy as np
import pytest

from keras_cmr.retrieval import BruteForceIndex, host_top_k
from keras_cmr.retrieval.storage import NpyRows


def cosines(queries, gallery):
    """Cosine scores in float64, queries x gallery."""
    def unit(rows):
        rows = rows.astype(np.float64)
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-300)

    return unit(queries) @ unit(gallery).T


def reference_top_k(queries, gallery, k):
    """Cosine scores in float64; best first, equal scores by gallery position (stable sort)."""
    scores = cosines(queries, gallery)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


@pytest.fixture
def small_blocks(monkeypatch):
    """Host blocks of 8 queries x 16 gallery rows, so tiny data spans many blocks."""
    monkeypatch.setattr(host_top_k, "HOST_QUERY_ROWS", 8)
    monkeypatch.setattr(host_top_k, "HOST_GALLERY_ROWS", 16)


@pytest.fixture
def tied_data(rng):
    """Queries and a gallery whose rows repeat (exact ties, across chunks), plus a zero query."""
    base = rng.standard_normal((40, 6)).astype(np.float32)
    gallery = np.concatenate([base, base[::-1], base[:13]])  # 93 rows, each value 2-3 times
    queries = np.concatenate([rng.standard_normal((20, 6)).astype(np.float32),
                              np.zeros((1, 6), np.float32)])
    return queries, gallery


@pytest.mark.parametrize("k", [1, 7, 20])
def test_host_and_keras_paths_return_the_reference_ids(tied_data, small_blocks, k):
    queries, gallery = tied_data
    expected_scores, expected_ids = reference_top_k(queries, gallery, k)
    found = {}
    for compute in ("host", "keras"):
        index = BruteForceIndex(gallery_chunk_rows=30, compute=compute)
        index.add(gallery[:50])
        index.add(gallery[50:], ids=np.arange(50, len(gallery)))
        scores, ids = index.search(queries, k)
        np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)
        found[compute] = ids
    # The zero query ties every item at 0: the first k added win.
    np.testing.assert_array_equal(found["host"][-1], np.arange(k))
    np.testing.assert_array_equal(found["host"], expected_ids)
    # The Keras path's float32 scores of equal gallery rows may differ in the last bit (how
    # a backend blocks its matrix product), so it may order exact ties either way: its ids
    # must be k distinct rows whose exact scores are the best k.
    ids = found["keras"]
    assert all(len(set(row)) == k for row in ids)
    np.testing.assert_allclose(np.take_along_axis(cosines(queries, gallery), ids, axis=1),
                               expected_scores, rtol=0, atol=1e-12)


def test_host_path_with_chunks_smaller_than_k(rng, small_blocks):
    queries = rng.standard_normal((11, 5)).astype(np.float32)
    gallery = rng.standard_normal((45, 5)).astype(np.float32)
    index = BruteForceIndex(metric="dot", gallery_chunk_rows=4, compute="host")
    index.add(gallery)
    scores, ids = index.search(queries, 9)
    order = np.argsort(-(queries.astype(np.float64) @ gallery.T), axis=1, kind="stable")[:, :9]
    np.testing.assert_array_equal(ids, order)
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ gallery.T, order, 1),
                               rtol=1e-5, atol=1e-5)


def test_npy_gallery_is_cached_and_the_cache_dropped_on_add(tmp_path, rng, monkeypatch):
    queries = rng.standard_normal((6, 8)).astype(np.float32)
    gallery = rng.standard_normal((70, 8)).astype(np.float32)
    np.save(tmp_path / "gallery.npy", gallery[:60])
    reads = []
    read_rows = NpyRows.__getitem__
    monkeypatch.setattr(NpyRows, "__getitem__",
                        lambda rows, key: reads.append(key) or read_rows(rows, key))
    index = BruteForceIndex(gallery_chunk_rows=25)
    index.add_npy(tmp_path / "gallery.npy")
    first = index.search(queries, 5)
    assert len(reads) == 3  # 60 rows in chunks of 25
    second = index.search(queries, 5)
    assert len(reads) == 3  # served from the cache
    np.testing.assert_array_equal(first[1], second[1])
    np.testing.assert_array_equal(first[1], reference_top_k(queries, gallery[:60], 5)[1])
    index.add(gallery[60:])
    _, ids = index.search(queries, 5)
    assert len(reads) == 6  # the cache was dropped: the file is read again
    np.testing.assert_array_equal(ids, reference_top_k(queries, gallery, 5)[1])


def test_gallery_above_cache_bytes_is_read_at_every_search(tmp_path, rng, monkeypatch):
    gallery = rng.standard_normal((30, 4)).astype(np.float32)
    np.save(tmp_path / "gallery.npy", gallery)
    reads = []
    read_rows = NpyRows.__getitem__
    monkeypatch.setattr(NpyRows, "__getitem__",
                        lambda rows, key: reads.append(key) or read_rows(rows, key))
    index = BruteForceIndex(cache_bytes=30 * 4 * 4 - 1)  # one byte short of the gallery
    index.add_npy(tmp_path / "gallery.npy")
    index.search(gallery[:2], 3)
    index.search(gallery[:2], 3)
    assert len(reads) == 2


@pytest.mark.parametrize("arguments, message", [
    ({"compute": "gpu"}, "`compute` must be one of"),
    ({"cache_bytes": -1}, "`cache_bytes` must be an integer >= 0"),
    ({"cache_bytes": 1.5}, "`cache_bytes` must be an integer >= 0"),
    ({"cache_bytes": "1GB"}, "`cache_bytes` must be an integer >= 0"),
])
def test_bad_compute_and_cache_arguments_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        BruteForceIndex(**arguments)


@pytest.mark.parametrize("k", [1, 7])
def test_host_path_split_over_threads_returns_the_reference_ids(tied_data, small_blocks,
                                                                 monkeypatch, k):
    # Three threads of one BLAS thread each, blocks of at most 8 queries (21 queries: 3 each).
    monkeypatch.setattr(host_top_k, "HOST_WORKERS", 3)
    monkeypatch.setattr(host_top_k, "HOST_MIN_WORKER_QUERIES", 1)
    queries, gallery = tied_data
    index = BruteForceIndex(gallery_chunk_rows=30, compute="host")
    index.add(gallery)
    scores, ids = index.search(queries, k)
    expected_scores, expected_ids = reference_top_k(queries, gallery, k)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k", [1, 5])
def test_fold_in_scores_keeps_the_k_best_with_ties_by_position(rng, k):
    # Scores from 6 values: ties everywhere, within and across the folded chunks.
    scores = rng.integers(0, 6, size=(9, 40)).astype(np.float32)
    block = host_top_k.HostTopK(np.zeros((9, 1), np.float32), k)
    for start, stop in [(0, 3), (3, 4), (4, 25), (25, 40)]:
        host_top_k.fold_in_scores(scores[:, start:stop], start, block.scores, block.positions)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(block.positions, order)
    np.testing.assert_array_equal(block.scores, np.take_along_axis(scores, order, axis=1))
