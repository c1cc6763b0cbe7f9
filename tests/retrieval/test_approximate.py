"""Approximate faiss indexes (IVF, HNSW): recall against exact search on a clustered gallery,
saving and loading, training on a gallery on disk, and bad arguments."""

import numpy as np
import pytest

from keras_cmr.retrieval import BruteForceIndex, FaissIndex, evaluate_index, load_index
from keras_cmr.retrieval.approximate import recall_against_exact

K = 10


@pytest.fixture(scope="module")
def gallery():
    """3000 rows in 30 Gaussian clusters of 16-d, 100 queries from the same clusters."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(30, 16))
    labels = rng.integers(0, 30, size=3000)
    rows = (centres[labels] + 0.4 * rng.normal(size=(3000, 16))).astype("float32")
    query_labels = rng.integers(0, 30, size=100)
    queries = (centres[query_labels] + 0.4 * rng.normal(size=(100, 16))).astype("float32")
    return rows, labels, queries, query_labels


def numpy_top_k(rows, queries, k):
    """Exact cosine top-k positions, numpy only (the reference)."""
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    scores = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def numpy_recall(found, exact):
    return np.mean([len(set(a) & set(b)) / exact.shape[1] for a, b in zip(found, exact)])


OPTIONS = {
    "ivf": dict(index_type="ivf", nlist=32, nprobe=4),
    "ivf_sq8": dict(index_type="ivf_sq8", nlist=32, nprobe=4),
    "hnsw": dict(index_type="hnsw", hnsw_m=8, ef_construction=40, ef_search=32),
}


@pytest.mark.parametrize("kind", sorted(OPTIONS))
def test_approximate_recall_against_exact_on_a_clustered_gallery(gallery, kind):
    rows, labels, queries, query_labels = gallery
    index = FaissIndex(**OPTIONS[kind])
    index.add(rows)
    exact = BruteForceIndex()
    exact.add(rows)
    results = evaluate_index(index, queries, query_labels, labels, k=K, exact=exact,
                             verbose=False)
    _, found = index.search_positions(queries, K)
    reference = numpy_recall(found, numpy_top_k(rows, queries, K))
    # The reported recall is the overlap with numpy's exact top 10; high, yet approximate
    # search's (the IVF one below 1 at nprobe 1).
    np.testing.assert_allclose(results[f"recall_vs_exact@{K}"], reference, atol=1e-12)
    assert results[f"recall_vs_exact@{K}"] >= 0.9, results
    if kind.startswith("ivf"):
        index.set_search(nprobe=1)
        low = evaluate_index(index, queries, query_labels, labels, k=K, exact=exact,
                             verbose=False)[f"recall_vs_exact@{K}"]
        index.set_search(nprobe=32)  # every cell: exact
        full = evaluate_index(index, queries, query_labels, labels, k=K, exact=exact,
                              verbose=False)[f"recall_vs_exact@{K}"]
        # Every cell searched: exact for "ivf"; "ivf_sq8" only loses what 8 bits round off.
        assert low < results[f"recall_vs_exact@{K}"] <= full
        assert full == 1.0 if kind == "ivf" else full >= 0.95


@pytest.mark.parametrize("kind", sorted(OPTIONS))
def test_approximate_indexes_save_and_load_like_the_exact_ones(gallery, tmp_path, kind):
    rows, _, queries, _ = gallery
    index = FaissIndex(**OPTIONS[kind])
    index.add(rows, ids=np.arange(len(rows)) + 1000)
    scores, ids = index.search(queries, K)
    index.save(str(tmp_path / "index"))
    for on_disk in (True, False):
        loaded = load_index(str(tmp_path / "index"), on_disk=on_disk)
        assert loaded.options == index.options and loaded.ntotal == len(rows)
        loaded_scores, loaded_ids = loaded.search(queries, K)
        np.testing.assert_array_equal(loaded_ids, ids)
        np.testing.assert_allclose(loaded_scores, scores, rtol=1e-6)
    # The search knob travels with the index and can change after loading.
    knob = "ef_search" if kind == "hnsw" else "nprobe"
    loaded.set_search(**{knob: 64})
    assert loaded.options[knob] == 64


def test_ivf_sq8_scores_are_the_exact_ones_to_8_bits_and_a_quarter_of_the_memory(gallery,
                                                                                 tmp_path):
    rows, _, queries, _ = gallery
    sizes, scores = {}, {}
    for kind in ("ivf", "ivf_sq8"):
        index = FaissIndex(index_type=kind, nlist=32, nprobe=32)  # every cell
        index.add(rows)
        scores[kind], positions = index.search_positions(queries, K)
        index.save(str(tmp_path / kind))
        sizes[kind] = (tmp_path / kind / "index.faiss").stat().st_size
        unit = rows[positions] / np.linalg.norm(rows[positions], axis=2, keepdims=True)
        cosine = np.einsum("qkd,qd->qk", unit, queries / np.linalg.norm(queries, axis=1,
                                                                        keepdims=True))
        # Each row rounded to 8 bits a dimension: its score is off by little, never by much.
        tolerance = 1e-5 if kind == "ivf" else 0.02
        np.testing.assert_allclose(scores[kind], cosine, atol=tolerance)
    assert np.abs(scores["ivf_sq8"] - scores["ivf"]).max() > 1e-5  # it is rounded
    # 16 bytes of codes a row against 64, plus the ids (8) and centroids both hold.
    assert sizes["ivf_sq8"] < 0.5 * sizes["ivf"], sizes


def test_ivf_trains_on_blocks_from_across_a_gallery_on_disk(gallery, tmp_path):
    rows, labels, queries, query_labels = gallery
    # Sorted by cluster: blocks from the file's start alone would miss most clusters.
    order = np.argsort(labels, kind="stable")
    np.save(tmp_path / "gallery.npy", rows[order])
    index = FaissIndex(index_type="ivf", nlist=32, nprobe=4, train_size=1024)
    index.add_npy(str(tmp_path / "gallery.npy"), ids=order)
    _, ids = index.search(queries, K)
    assert index.ntotal == len(rows)
    assert numpy_recall(ids, numpy_top_k(rows, queries, K)) >= 0.9


def test_recall_against_exact_counts_the_exact_neighbours_found():
    found = np.array([[1, 2, 3, -1], [4, 5, 6, 7]])
    exact = np.array([[3, 2, 9, 8], [7, 6, 5, 4]])
    assert recall_against_exact(found, exact) == (2 / 4 + 4 / 4) / 2
    with pytest.raises(ValueError, match=r"must be two \(queries, k\) arrays alike"):
        recall_against_exact(found[:, :2], exact)


def test_bad_approximate_arguments_are_refused(gallery):
    rows = gallery[0]
    with pytest.raises(ValueError, match="`index_type` must be one of"):
        FaissIndex(index_type="pq")
    with pytest.raises(ValueError, match="`nlist` must be an integer >= 1, got 0"):
        FaissIndex(index_type="ivf", nlist=0)
    with pytest.raises(ValueError, match="`ef_search` applies to another index type, not to "
                                         "'ivf'"):
        FaissIndex(index_type="ivf").set_search(ef_search=10)
    index = FaissIndex(index_type="ivf", nlist=64)
    with pytest.raises(ValueError, match="nlist=64 cells trains on at least as many rows; "
                                         "got 50"):
        index.add(rows[:50])
    assert index.ntotal == 0 and index.dim is None
    index.add(rows)
    exact = BruteForceIndex()
    exact.add(rows[:100])
    with pytest.raises(ValueError, match="`exact` holds 100 x 16, the index 3000 x 16"):
        evaluate_index(index, rows[:5], np.zeros(5, int), np.zeros(3000, int), exact=exact)
