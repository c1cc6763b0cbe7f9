"""Top-k metrics read off an index equal the full-ranking metrics of keras_cmr.evaluation."""

import numpy as np
import pytest

from keras_cmr.evaluation import retrieval_metrics
from keras_cmr.retrieval import BruteForceIndex, evaluate_index


def numpy_reference(queries, query_labels, gallery, gallery_labels, k, k_values):
    """Written from the definitions: a stable argsort of cosine similarities."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    order = np.argsort(-(q.astype(np.float64) @ g.T.astype(np.float64)), axis=1,
                       kind="stable")
    relevant = (gallery_labels[order] == query_labels[:, None]).astype(float)[:, :k]
    results = {}
    aps = []
    for row in relevant:
        hits = np.cumsum(row)
        precision = hits / np.arange(1, len(row) + 1)
        aps.append((precision * row).sum() / max(row.sum(), 1))
    results[f"map@{k}"] = np.mean(aps)
    for cutoff in k_values:
        results[f"precision@{cutoff}"] = relevant[:, :cutoff].sum(axis=1).mean() / cutoff
    for cutoff in k_values:
        results[f"recall@{cutoff}"] = (relevant[:, :cutoff].sum(axis=1) > 0).mean()
    return results


def test_equals_numpy_reference_and_full_ranking_metrics(rng, tmp_path):
    queries = rng.standard_normal((80, 10)).astype(np.float32)
    gallery = rng.standard_normal((700, 10)).astype(np.float32)
    query_labels, gallery_labels = rng.integers(0, 6, 80), rng.integers(0, 6, 700)
    path = str(tmp_path / "gallery.npy")
    np.save(path, gallery)
    index = BruteForceIndex(gallery_chunk_rows=128)
    index.add_npy(path)
    got = evaluate_index(index, queries, query_labels, gallery_labels, k=20, k_values=(1, 5, 20))
    expected = numpy_reference(queries, query_labels, gallery, gallery_labels, 20, (1, 5, 20))
    assert list(got) == list(expected)
    for key in expected:
        assert got[key] == pytest.approx(expected[key], abs=1e-12), key
    full = retrieval_metrics(queries, query_labels, gallery, gallery_labels,
                             metrics=("map", "precision", "recall"), top_k=20, k_values=(1, 5, 20))
    for key in expected:
        assert got[key] == pytest.approx(full[key], abs=1e-12), key


def test_multi_hot_labels_match_full_ranking_metrics(rng):
    queries = rng.standard_normal((40, 8)).astype(np.float32)
    gallery = rng.standard_normal((200, 8)).astype(np.float32)
    query_labels = (rng.random((40, 5)) < 0.3).astype(int)
    gallery_labels = (rng.random((200, 5)) < 0.3).astype(int)
    index = BruteForceIndex()
    index.add(gallery)
    got = evaluate_index(index, queries, query_labels, gallery_labels, k=10, k_values=(1, 10))
    full = retrieval_metrics(queries, query_labels, gallery, gallery_labels,
                             metrics=("map", "precision", "recall"), top_k=10, k_values=(1, 10))
    assert got == pytest.approx(full, abs=1e-12)


def test_bad_arguments_are_refused(rng):
    index = BruteForceIndex()
    index.add(rng.standard_normal((30, 4)))
    queries = rng.standard_normal((5, 4))
    with pytest.raises(ValueError, match=r"at most k=5"):
        evaluate_index(index, queries, np.zeros(5), np.zeros(30), k=5, k_values=(1, 10))
    with pytest.raises(ValueError, match="`gallery_labels` has 29 rows but `the index's gallery` "
                                         "has 30"):
        evaluate_index(index, queries, np.zeros(5), np.zeros(29), k=5, k_values=(1,))
    with pytest.raises(ValueError, match="1-D class ids but `gallery_labels` are 2-D"):
        evaluate_index(index, queries, np.zeros(5), np.zeros((30, 2)), k=5, k_values=(1,))
