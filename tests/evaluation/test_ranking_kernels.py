"""The compiled ranking passes against a stable argsort of -scores, on hand-made score rows.

`keras_cmr.evaluation.ranking_kernels` ranks float32 scores through integer keys; these tests
hit its tie paths directly with scores that a matmul rarely gives: +0.0 against -0.0,
denormals, rows whose relevant items all tie with irrelevant ones, and rows with more tie
groups than the per-group scan handles (re-sorted whole). Both relevance inputs are checked:
class codes and a bool matrix.
"""

import numpy as np
import pytest

from keras_cmr.evaluation.ranking_kernels import order_keys, relevant_ranks

TINY = np.float32(1e-45)  # the smallest positive denormal


def kernel_ranks(scores, relevant, codes):
    """(counts, precision sums, rows, ranks, k) from the kernels, relevance as class codes or
    as bool."""
    scores = np.ascontiguousarray(scores, np.float32)
    if codes:  # query 0 of class 0 ... : gallery class 0 where relevant, 1 elsewhere
        query_codes = np.zeros(len(scores), np.uint8)
        gallery_codes = np.where(relevant, 0, 1).astype(np.uint8)
        assert (gallery_codes == gallery_codes[0]).all()
        inputs = (query_codes, gallery_codes[0], None)
    else:
        inputs = (None, None, np.ascontiguousarray(relevant, bool))
    bits = scores.view(np.int32)
    keys = np.empty(scores.shape, np.int32)
    n_relevant = order_keys(bits, *inputs, keys)
    keys.sort(axis=1)
    counts = np.empty(len(scores), np.int64)
    precision_sums = np.empty(len(scores))
    rows, ranks, k = (np.empty(n_relevant + 1, np.int64) for _ in range(3))
    relevant_ranks(keys, bits, *inputs, counts, precision_sums, rows, ranks, k)
    return counts, precision_sums, rows[:n_relevant], ranks[:n_relevant], k[:n_relevant]


def reference_ranks(scores, relevant):
    """The same from a stable argsort of -scores (-0.0 == +0.0 there), row by row."""
    counts, precision_sums, rows, ranks, k = [], [], [], [], []
    for row, (row_scores, row_relevant) in enumerate(zip(scores, relevant)):
        order = np.argsort(-row_scores, kind="stable")
        hit_ranks = np.flatnonzero(row_relevant[order]) + 1  # best first
        counts.append(len(hit_ranks))
        precision_sums.append(np.sum(np.arange(1, len(hit_ranks) + 1) / hit_ranks))
        rows += [row] * len(hit_ranks)
        ranks += list(hit_ranks[::-1])
        k += list(np.arange(len(hit_ranks), 0, -1))
    return [np.array(values, np.int64) for values in (counts, rows, ranks, k)], precision_sums


def assert_ranks_match(scores, relevant, codes):
    counts, precision_sums, *hits = kernel_ranks(scores, relevant, codes)
    expected, expected_sums = reference_ranks(scores, relevant)
    for name, a, b in zip(("counts", "rows", "ranks", "k"), [counts, *hits], expected):
        np.testing.assert_array_equal(a, b, err_msg=name)
    np.testing.assert_allclose(precision_sums, expected_sums, rtol=1e-12)


@pytest.mark.parametrize("codes", [True, False])
def test_signed_zeros_and_denormals_tie_by_gallery_index(codes):
    scores = np.array([
        [0.0, -0.0, 0.0, -0.0, 0.5, -0.5],
        [-0.0, 0.0, -0.0, 0.0, TINY, -TINY],
        [TINY, -0.0, TINY, 0.0, -TINY, -TINY],
        [-0.5, -0.5, -0.0, -0.5, 0.0, -0.5],
    ], np.float32)
    relevant = np.array([[0, 1, 0, 1, 0, 1]] * 4, bool)
    assert_ranks_match(scores, relevant, codes)
    # 0.5 first, then the four zeros by index: the relevant -0.0 at index 1 ranks third, after
    # the +0.0 at index 0 it ties; -0.5 last.
    counts, precision_sums, rows, ranks, k = kernel_ranks(scores[:1], relevant[:1], codes)
    assert list(ranks) == [6, 5, 3] and list(k) == [3, 2, 1]
    assert precision_sums[0] == 3 / 6 + 2 / 5 + 1 / 3


@pytest.mark.parametrize("codes", [True, False])
def test_rows_whose_relevant_items_all_tie_with_irrelevant_ones(codes):
    rng = np.random.default_rng(0)
    n_columns = 300
    relevant = np.zeros((3, n_columns), bool)
    relevant[:, rng.choice(n_columns, 40, replace=False)] = True
    values = np.sort(rng.standard_normal(8)).astype(np.float32)
    # Every score value held by both a relevant and an irrelevant item, in shuffled order.
    scores = np.stack([rng.choice(values, n_columns) for _ in range(3)])
    for row in scores:
        row[relevant[0]] = values[rng.integers(0, len(values), relevant[0].sum())]
    assert_ranks_match(scores, relevant, codes)


@pytest.mark.parametrize("codes", [True, False])
@pytest.mark.parametrize("distinct", [5, 40, 500])
def test_few_and_many_tie_groups_per_row(codes, distinct):
    # 5 or 40 tied values: each group scanned; 500: more groups than the scan takes, so the
    # row is re-sorted whole. Unique random values fill the rest of the row.
    rng = np.random.default_rng(distinct)
    n_rows, n_columns = 6, 2000
    scores = rng.uniform(-1, 1, (n_rows, n_columns)).astype(np.float32)
    tied_values = np.concatenate([[0.0, -0.0, TINY, -TINY],
                                  rng.uniform(-1, 1, distinct - 4)]).astype(np.float32)
    tied = rng.random((n_rows, n_columns)) < 0.6
    scores[tied] = rng.choice(tied_values, tied.sum())
    relevant = np.broadcast_to(rng.random(n_columns) < 0.3, (n_rows, n_columns))
    assert_ranks_match(scores, relevant, codes)


def test_bool_relevance_differs_per_row():
    # Class codes give every row the same relevance pattern here; a bool matrix need not.
    rng = np.random.default_rng(3)
    scores = np.round(rng.uniform(-1, 1, (20, 257)) * 4).astype(np.float32) / 4
    scores[rng.random(scores.shape) < 0.2] = -0.0
    relevant = rng.random(scores.shape) < 0.2
    relevant[5] = False  # a row without relevant items
    assert_ranks_match(scores, relevant, codes=False)
