"""Top-k retrieval metrics read off an index's search, for galleries too big to rank whole.

The definitions are those of `keras_cmr.evaluation` restricted to the top K (with rel(i) = 1
when the item at rank i shares the query's label, P@i = (1/i) * sum_{j<=i} rel(j)):

- AP@K = (1/R_K) * sum_{i=1..K} P@i * rel(i), R_K = relevant items in the top K ("map@K");
- P@k = (relevant items in the top k) / k, the denominator k even if the gallery is smaller
  ("precision@k");
- recall@k = 1 when a relevant item is in the top k, else 0 ("recall@k");

each averaged over queries (a query with none relevant in its top K counts 0). Only the top K
of each query is needed, so the gallery is streamed through the index chunk by chunk.
"""

import numpy as np

from keras_cmr.evaluation.inputs import check_label_forms, prepare_labels
from keras_cmr.retrieval.approximate import recall_against_exact
from keras_cmr.utils.checks import check_positive_int


def _relevance(query_labels, gallery_labels, positions):
    """(queries, k) bool: the item at each rank shares a label with the query."""
    found = gallery_labels[positions]
    if query_labels.ndim == 1:
        return found == query_labels[:, None]
    return np.einsum("ql,qkl->qk", query_labels, found) > 0.5


def evaluate_index(index, queries, query_labels, gallery_labels, k=10, k_values=(1, 5, 10),
                   verbose="auto", exact=None):
    """mAP@K, P@k and recall@k of retrieving from `index` (definitions: module docstring).

    Args:
        index: a `BruteForceIndex` or `FaissIndex` holding the gallery.
        queries: (n, dim) query embeddings.
        query_labels: (n,) class ids or (n, L) multi-hot labels.
        gallery_labels: labels of the gallery items in the order they were added (the
            index's positions), in the same form as `query_labels`.
        k: K of mAP@K, and the depth searched.
        k_values: cutoffs of P@k and recall@k, each at most `k`.
        verbose: progress bar of the search (True, False or "auto").
        exact: an exact index over the same gallery in the same order (`BruteForceIndex`, or
            a flat `FaissIndex`), for an approximate `index`: adds "recall_vs_exact@K", the
            mean fraction of each query's exact top K that `index` found in its top K.

    Returns:
        {"map@K": float, "precision@k": float, ..., "recall@k": float, ...}, and
        "recall_vs_exact@K" with `exact`.
    """
    k = check_positive_int(k, "`k`")
    k_values = [check_positive_int(cutoff, "`k_values`") for cutoff in k_values]
    if any(cutoff > k for cutoff in k_values):
        raise ValueError(f"every cutoff in `k_values` must be at most k={k}, got {k_values}.")
    query_labels = prepare_labels(query_labels, "query_labels", len(queries), "queries")
    gallery_labels = prepare_labels(gallery_labels, "gallery_labels", index.ntotal,
                                     "the index's gallery")
    check_label_forms(query_labels, gallery_labels, "query_labels", "gallery_labels")
    _, positions = index.search_positions(queries, k, verbose=verbose)
    relevant = _relevance(query_labels, gallery_labels, positions)
    hits = np.cumsum(relevant, axis=1)
    ranks = np.arange(1, relevant.shape[1] + 1)
    average_precision = ((hits / ranks) * relevant).sum(axis=1) / np.maximum(hits[:, -1], 1)
    results = {f"map@{k}": float(average_precision.mean())}
    for cutoff in k_values:
        depth = min(cutoff, relevant.shape[1])
        results[f"precision@{cutoff}"] = float((hits[:, depth - 1] / cutoff).mean())
    for cutoff in k_values:
        depth = min(cutoff, relevant.shape[1])
        results[f"recall@{cutoff}"] = float((hits[:, depth - 1] > 0).mean())
    if exact is not None:
        if (exact.ntotal, exact.dim) != (index.ntotal, index.dim):
            raise ValueError(f"`exact` holds {exact.ntotal} x {exact.dim}, the index "
                             f"{index.ntotal} x {index.dim}: they must hold the same gallery.")
        _, exact_positions = exact.search_positions(queries, k, verbose=verbose)
        results[f"recall_vs_exact@{k}"] = recall_against_exact(positions, exact_positions)
    return results
