"""Retrieval metrics against an independent loop-based numpy reference, on every backend."""

import os
import tracemalloc

import keras
import numpy as np
import pytest

from keras_cmr.evaluation import (
    evaluate_retrieval,
    map_at_r,
    mean_average_precision,
    precision_at_k,
    r_precision,
    recall_at_k,
    retrieval_metrics,
)

K_VALUES = (1, 5, 10, 300)
ALL_METRICS = ("map", "map@r", "r_precision", "precision", "recall")


def reference_metrics(queries, query_labels, gallery, gallery_labels, top_k=None, k_values=()):
    """One query at a time: float64 cosine, stable argsort, a loop down the ranked list.

    The cosines come from einsum (no BLAS): one code path for every gallery row, so duplicate
    rows tie exactly.
    """

    def normalise(x):
        x = np.asarray(x, np.float64)
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(norm > 0, norm, 1)

    queries, gallery = normalise(queries), normalise(gallery)
    query_labels, gallery_labels = np.asarray(query_labels), np.asarray(gallery_labels)
    per_query = {}
    for i, query in enumerate(queries):
        order = np.argsort(-np.einsum("ij,j->i", gallery, query), kind="stable")
        if query_labels.ndim == 1:
            relevant = gallery_labels[order] == query_labels[i]
        else:
            relevant = (gallery_labels[order] * query_labels[i]).sum(axis=1) > 0
        total = int(relevant.sum())
        hits = ap_sum = ap_k_sum = ap_k_hits = map_r_sum = r_hits = 0
        for rank, is_relevant in enumerate(relevant, start=1):
            if not is_relevant:
                continue
            hits += 1
            precision = hits / rank
            ap_sum += precision
            if top_k is None or rank <= top_k:
                ap_k_sum += precision
                ap_k_hits += 1
            if rank <= total:
                map_r_sum += precision
                r_hits += 1
        values = {
            "map" if top_k is None else f"map@{top_k}": ap_k_sum / ap_k_hits if ap_k_hits else 0.0,
            "map@all": ap_sum / total if total else 0.0,
            "map@r": map_r_sum / total if total else 0.0,
            "r_precision": r_hits / total if total else 0.0,
        }
        for k in k_values:
            values[f"precision@{k}"] = relevant[:k].sum() / k
            values[f"recall@{k}"] = float(relevant[:k].any())
        for key, value in values.items():
            per_query.setdefault(key, []).append(value)
    return {key: float(np.mean(values)) for key, values in per_query.items()}


def assert_matches_reference(queries, query_labels, gallery, gallery_labels, top_k=None,
                             chunk_size=None):
    got = retrieval_metrics(
        queries, query_labels, gallery, gallery_labels, metrics=ALL_METRICS, top_k=top_k,
        k_values=K_VALUES, chunk_size=chunk_size,
    )
    expected = reference_metrics(queries, query_labels, gallery, gallery_labels, top_k, K_VALUES)
    assert set(got) == set(expected) - {"map@all"}
    for key, value in got.items():
        assert value == pytest.approx(expected[key], abs=1e-6), key
    return got, expected


def random_data(rng, n_queries, n_gallery, dims, n_classes, multi_hot=False):
    queries = rng.standard_normal((n_queries, dims)).astype(np.float32)
    gallery = rng.standard_normal((n_gallery, dims)).astype(np.float32)
    if multi_hot:
        query_labels = (rng.random((n_queries, n_classes)) < 0.2).astype(np.int64)
        gallery_labels = (rng.random((n_gallery, n_classes)) < 0.2).astype(np.int64)
    else:
        query_labels = rng.integers(0, n_classes, n_queries)
        gallery_labels = rng.integers(0, n_classes, n_gallery)
    return queries, query_labels, gallery, gallery_labels


@pytest.mark.parametrize("multi_hot", [False, True])
@pytest.mark.parametrize("top_k,chunk_size", [(None, None), (None, 7), (1, 13), (25, 5)])
def test_random_data_matches_reference(rng, multi_hot, top_k, chunk_size):
    data = random_data(rng, 61, 150, 6, 5, multi_hot)
    got, _ = assert_matches_reference(*data, top_k=top_k, chunk_size=chunk_size)
    assert 0.0 < got["map" if top_k is None else f"map@{top_k}"] < 1.0


def test_huge_and_tiny_magnitudes_are_normalised(rng):
    # 2**100 and 2**-100 scale exactly; their squares overflow / underflow float32.
    queries, query_labels, gallery, gallery_labels = random_data(rng, 30, 40, 5, 3)
    got, _ = assert_matches_reference(queries * np.float32(2.0**100), query_labels,
                                      gallery * np.float32(2.0**-100), gallery_labels)
    assert got["map"] == pytest.approx(
        mean_average_precision(queries, query_labels, gallery, gallery_labels), abs=1e-6
    )


def test_single_metric_functions_match_reference(rng):
    data = random_data(rng, 40, 90, 5, 4)
    expected = reference_metrics(*data, top_k=None, k_values=(3,))
    expected_top = reference_metrics(*data, top_k=10)
    assert mean_average_precision(*data) == pytest.approx(expected["map"], abs=1e-6)
    assert mean_average_precision(*data, top_k=10) == pytest.approx(
        expected_top["map@10"], abs=1e-6
    )
    assert map_at_r(*data, chunk_size=3) == pytest.approx(expected["map@r"], abs=1e-6)
    assert r_precision(*data) == pytest.approx(expected["r_precision"], abs=1e-6)
    assert precision_at_k(*data, k=3) == pytest.approx(expected["precision@3"], abs=1e-6)
    assert recall_at_k(*data, k=3) == pytest.approx(expected["recall@3"], abs=1e-6)


def test_ties_are_broken_by_gallery_index():
    # [1, 1] and [1, -1] have exactly the same cosine (1/sqrt 2) with the query [1, 0].
    query = np.array([[1.0, 0.0]])
    gallery = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 0.0]])
    # Irrelevant first: the relevant item ranks 2nd; AP = 1/2, P@1 = 0, recall@1 = 0.
    first = retrieval_metrics(query, [0], gallery, [1, 0, 1], ALL_METRICS, k_values=(1, 2))
    assert first["map"] == pytest.approx(0.5)
    assert first["precision@1"] == 0.0 and first["recall@1"] == 0.0 and first["recall@2"] == 1.0
    # Relevant first: AP = 1.
    second = retrieval_metrics(query, [0], gallery, [0, 1, 1], ALL_METRICS, k_values=(1, 2))
    assert second["map"] == pytest.approx(1.0) and second["precision@1"] == 1.0


@pytest.mark.parametrize("dims,n_gallery", [(4, 50), (16, 300)])
def test_exact_ties_on_a_grid_match_reference(rng, dims, n_gallery):
    # Entries +-1/sqrt(dims): unit norm exactly and every cosine a multiple of 2/dims, computed
    # exactly in float32 and float64, so nearly every row has relevant/irrelevant ties: a few
    # tie groups per row in 4-D, up to 17 in 16-D (rows re-sorted whole).
    value = 1 / np.sqrt(dims)
    queries = rng.choice([-value, value], size=(37, dims))
    gallery = rng.choice([-value, value], size=(n_gallery, dims))
    gallery[-5:] = queries[:5]  # duplicates of queries
    query_labels, gallery_labels = rng.integers(0, 3, 37), rng.integers(0, 3, n_gallery)
    for top_k, chunk_size in [(None, None), (6, 4)]:
        assert_matches_reference(queries, query_labels, gallery, gallery_labels, top_k,
                                 chunk_size)


def test_zero_vectors_and_negative_zero():
    # A zero query ties everything at 0: gallery order decides, relevant items at ranks 2, 3.
    gallery = np.array([[1.0, 1.0], [-0.0, -0.0], [0.0, 0.0], [-1.0, -1.0]])
    zero_query = retrieval_metrics([[0.0, 0.0]], [1], gallery, [0, 1, 1, 0], ("map", "map@r"))
    assert zero_query["map"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert zero_query["map@r"] == pytest.approx((1 / 2) / 2)
    # -0.0 and 0.0 are equal similarities: the irrelevant 0.0 at index 1 ranks first.
    signed = retrieval_metrics([[1.0, 1.0]], [1], gallery[[0, 2, 1, 3]], [0, 0, 1, 0])
    assert signed["map"] == pytest.approx(1 / 3)


def test_query_without_relevant_items_counts_zero():
    gallery = np.eye(3)
    got = retrieval_metrics(np.eye(3)[:2], [0, 5], gallery, [0, 1, 2], ALL_METRICS, top_k=2,
                            k_values=(1,))
    assert got == pytest.approx({"map@2": 0.5, "map@r": 0.5, "r_precision": 0.5,
                                 "precision@1": 0.5, "recall@1": 0.5})


def test_multi_label_relevance_is_any_shared_label():
    query = [[1.0, 0.0]]
    gallery = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]]
    labels = [[1, 0, 1]]
    gallery_labels = [[0, 1, 0], [0, 0, 1], [1, 1, 0]]
    # Relevant at ranks 2 and 3: AP = (1/2 + 2/3) / 2.
    got = retrieval_metrics(query, labels, gallery, gallery_labels, ("map", "r_precision"))
    assert got["map"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert got["r_precision"] == pytest.approx(1 / 2)


def test_backend_tensors_are_accepted(rng):
    queries, query_labels, gallery, gallery_labels = random_data(rng, 20, 30, 4, 3)
    expected = mean_average_precision(queries, query_labels, gallery, gallery_labels)
    got = mean_average_precision(
        keras.ops.convert_to_tensor(queries), keras.ops.convert_to_tensor(query_labels),
        keras.ops.convert_to_tensor(gallery), list(gallery_labels),
    )
    assert got == pytest.approx(expected, abs=1e-12)


def test_wikipedia_sift_images_match_reference(wikipedia_dir):
    data = np.load(os.path.join(wikipedia_dir, "wikipedia_sift_lda.npz"))
    images, labels = data["image_test"], data["label_test"]
    assert images.shape == (693, 128)
    got = mean_average_precision(images, labels, images, labels)
    assert got == pytest.approx(reference_metrics(images, labels, images, labels)["map"], abs=1e-6)
    assert 0.1 < got < 0.5
    # Train + test holds the README's 10 duplicated image rows; test row 542 equals train row
    # 623 (another class), so both have cosine 1 with query 542 and gallery order decides.
    gallery = np.concatenate([data["image_train"], images])
    gallery_labels = np.concatenate([data["label_train"], labels])
    assert np.array_equal(gallery[623], images[542]) and gallery_labels[623] != labels[542]
    assert precision_at_k(images[542:543], labels[542:543], gallery, gallery_labels, k=1) == 0.0
    assert precision_at_k(images[542:543], labels[542:543], gallery[::-1], gallery_labels[::-1],
                          k=1) == 1.0
    assert_matches_reference(images, labels, gallery, gallery_labels, top_k=50)
    # The duplicated rows as queries, with the second copy of each pair moved to another
    # class: every query then ties a relevant and an irrelevant item at cosine 1. A BLAS
    # matmul may round the two copies' dot products differently; the ranking must not.
    _, group, size = np.unique(gallery, axis=0, return_inverse=True, return_counts=True)
    duplicated = np.flatnonzero(size[group] > 1)
    assert len(duplicated) == 20
    relabelled = gallery_labels.copy()
    for first, second in np.sort(duplicated[np.argsort(group[duplicated], kind="stable")]
                                 .reshape(10, 2), axis=1):
        relabelled[second] = (relabelled[first] + 1) % 10
    assert_matches_reference(gallery[duplicated], relabelled[duplicated], gallery, relabelled)


def test_evaluate_retrieval_keys_and_symmetry(rng):
    image, labels, text, _ = random_data(rng, 30, 30, 5, 4)
    text_labels = rng.integers(0, 4, 30)
    metrics = ("map", "map@r", "precision")
    got = evaluate_retrieval(image, text, image_labels=labels, text_labels=text_labels,
                             metrics=metrics, k_values=(1, 5))
    keys = ["map", "map@r", "precision@1", "precision@5"]
    assert sorted(got) == sorted(f"{d}_{k}" for d in ("i2t", "t2i", "avg") for k in keys)
    swapped = evaluate_retrieval(text, image, image_labels=text_labels, text_labels=labels,
                                 metrics=metrics, k_values=(1, 5))
    for key in keys:
        assert got[f"i2t_{key}"] == pytest.approx(swapped[f"t2i_{key}"], abs=1e-12)
        assert got[f"avg_{key}"] == pytest.approx((got[f"i2t_{key}"] + got[f"t2i_{key}"]) / 2)
    direct = retrieval_metrics(image, labels, text, text_labels, metrics, k_values=(1, 5))
    assert got["i2t_map"] == pytest.approx(direct["map"], abs=1e-12)
    assert got["i2t_map"] != pytest.approx(got["t2i_map"], abs=1e-6)
    paired = evaluate_retrieval(image, text, labels, top_k=5)
    assert sorted(paired) == ["avg_map@5", "i2t_map@5", "t2i_map@5"]


GOOD = dict(queries=np.ones((3, 4)), query_labels=[0, 1, 2], gallery=np.ones((5, 4)),
            gallery_labels=[0, 1, 2, 0, 1])


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"queries": np.ones(4)}, "`queries` must be a 2-D array"),
        ({"gallery": np.ones((5, 3))}, "different embedding sizes: 4 vs 3"),
        ({"query_labels": [0, 1]}, "`query_labels` has 2 rows but `queries` has 3"),
        ({"gallery": np.array([[1.0] * 4] * 3 + [[np.nan] + [1.0] * 3] + [[np.inf] * 4])},
         "`gallery` holds NaN or inf, first in row 3"),
        ({"query_labels": [0.5, 1.0, 2.0]}, "`query_labels` must hold integer labels"),
        ({"gallery_labels": np.array(list("abcde"))}, "`gallery_labels` must hold integer"),
        ({"gallery_labels": np.eye(5, 3, dtype=int)}, "`query_labels` are 1-D class ids but"),
        ({"query_labels": np.full((3, 1), 4)}, "must be multi-hot"),
        ({"top_k": 0}, "`top_k` must be an integer >= 1"),
        ({"chunk_size": 0}, "`chunk_size` must be an integer >= 1"),
        ({"queries": np.ones((0, 4)), "query_labels": []}, "`queries` is empty"),
        ({"gallery": np.ones((0, 4)), "gallery_labels": []}, "`gallery` is empty"),
        ({"metrics": ("mrr",)}, "Unknown metric 'mrr'"),
        ({"metrics": ("precision",), "k_values": (0,)}, "`k_values` must be an integer >= 1"),
    ],
)
def test_bad_inputs_raise_clear_errors(changes, match):
    with pytest.raises(ValueError, match=match):
        retrieval_metrics(**{**GOOD, **changes})


def test_bad_k_and_bad_evaluate_arguments():
    with pytest.raises(ValueError, match="`k` must be an integer >= 1"):
        precision_at_k(**GOOD, k=0)
    with pytest.raises(ValueError, match="`k` must be an integer >= 1"):
        recall_at_k(**GOOD, k=-2)
    image, text = np.ones((3, 4)), np.ones((3, 4))
    with pytest.raises(ValueError, match="not both"):
        evaluate_retrieval(image, text, [0, 1, 2], image_labels=[0, 1, 2])
    with pytest.raises(ValueError, match="Pass `labels`"):
        evaluate_retrieval(image, text, image_labels=[0, 1, 2])
    with pytest.raises(ValueError, match="`text_embeddings` holds NaN or inf, first in row 1"):
        evaluate_retrieval(image, [[1.0] * 4, [np.nan] * 4, [1.0] * 4], [0, 1, 2])
    with pytest.raises(ValueError, match="`image_embeddings` and `text_embeddings` have diff"):
        evaluate_retrieval(image, np.ones((3, 2)), [0, 1, 2])


def test_memory_stays_bounded_by_the_chunk(rng):
    # 20k x 20k similarities alone would take 1.6 GB in float32; the chunks keep the peak low.
    n, dims = 20_000, 64
    queries = rng.standard_normal((n, dims)).astype(np.float32)
    labels = rng.integers(0, 10, n)
    tracemalloc.start()
    try:
        value = mean_average_precision(queries, labels, queries, labels)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 0.1 < value < 0.2
    assert peak < 300 * 2**20, f"peak {peak / 2**20:.0f} MB"


def reference_pr_curve(queries, query_labels, gallery, gallery_labels, levels):
    """Per query: a stable argsort and a loop collecting (recall, precision) at every hit."""
    curves = []
    for i, query in enumerate(queries):
        scores = (gallery / np.linalg.norm(gallery, axis=1, keepdims=True)) @ query
        order = np.argsort(-scores.astype(np.float64), kind="stable")
        if query_labels.ndim == 1:
            relevant = gallery_labels[order] == query_labels[i]
        else:
            relevant = (gallery_labels[order] * query_labels[i]).sum(axis=1) > 0
        total, hits, points = int(relevant.sum()), 0, []
        for rank, is_relevant in enumerate(relevant, start=1):
            if is_relevant:
                hits += 1
                points.append((hits / total, hits / rank))
        curves.append([max([p for r, p in points if r >= level - 1e-12], default=0.0)
                       for level in levels])
    return np.mean(curves, axis=0)


@pytest.mark.parametrize("multi_hot", [False, True])
@pytest.mark.parametrize("chunk_size", [None, 7])
def test_precision_recall_curve_matches_reference(rng, multi_hot, chunk_size):
    from keras_cmr.evaluation import precision_recall_curve

    queries, query_labels, gallery, gallery_labels = random_data(rng, 41, 90, 5, 4, multi_hot)
    # Quantised gallery rows make ties that the curve must break by gallery index too.
    gallery = np.round(gallery * 2) / 2
    got = precision_recall_curve(queries, query_labels, gallery, gallery_labels,
                                 chunk_size=chunk_size)
    levels = [i / 10 for i in range(11)]
    assert got["recall"] == levels
    expected = reference_pr_curve(queries, query_labels, gallery, gallery_labels, levels)
    np.testing.assert_allclose(got["precision"], expected, atol=1e-9)
    # Interpolated precision never rises with recall.
    assert np.all(np.diff(got["precision"]) <= 1e-12)


def test_precision_at_recall_through_evaluate_retrieval_and_bad_levels(rng):
    queries, labels, gallery, _ = random_data(rng, 20, 20, 4, 3)
    got = evaluate_retrieval(queries, gallery, labels, metrics=("precision_at_recall@0.5",))
    i2t = reference_pr_curve(queries, labels, gallery, labels, [0.5])[0]
    assert got["i2t_precision_at_recall@0.5"] == pytest.approx(i2t, abs=1e-9)
    for bad in ("precision_at_recall@1.5", "precision_at_recall@half"):
        with pytest.raises(ValueError, match="recall level"):
            retrieval_metrics(queries, labels, gallery, labels, metrics=(bad,))
