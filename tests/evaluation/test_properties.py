"""Property-based tests of every retrieval metric over random shapes, values, labels and cutoffs.

For every drawn retrieval problem each metric must be a Python float, finite, in [0, 1] and
equal to an independent float64 numpy reference written from the definitions in
keras_cmr.evaluation.metrics (rank by cosine, highest first, ties by gallery index). The
strategies include the degenerate problems: identical embeddings (a gallery of one repeated
point, queries on it), all items one class, queries without any relevant item, zero vectors,
galleries smaller than the cutoff k, and features scaled by 1e-8 and 1e8.

The numbers come from a seed that Hypothesis draws beside the structure: "normal" N(0, 1)
values have no ties, and "grid" values (every entry +-1/2 in 4-D, unit rows, cosines in
{-1, -1/2, 0, 1/2, 1}) have many, exact in float32 and float64 alike, so the reference's
stable float64 sort ranks them as the library's float32 one does.
"""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keras_cmr.evaluation import (
    evaluate_retrieval,
    map_at_r,
    mean_average_precision,
    precision_at_k,
    precision_recall_curve,
    r_precision,
    recall_at_k,
    retrieval_metrics,
)

SCALES = (1e-8, 1e8)
CASES = ("random", "identical", "one_class", "no_positive") + tuple(
    f"scale_{scale:g}" for scale in SCALES)
# One recall level off the 11-point grid, to exercise the "reaches rho" rounding.
RECALL_LEVELS = (0.0, 0.1, 0.25, 0.3, 0.5, 0.7, 1 / 3, 0.9, 1.0)


def examples(count):
    return settings(max_examples=count, deadline=None, derandomize=True, database=None)


# ----- the reference ---------------------------------------------------------------------------

def unit(x):
    x = np.asarray(x, np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def ranked_relevance(queries, query_labels, gallery, gallery_labels):
    """(queries, gallery) bool: rel(i) of each query's gallery ranked by float64 cosine,
    highest first, equal cosines by gallery index (a stable sort)."""
    scores = unit(queries) @ unit(gallery).T
    query_labels, gallery_labels = np.asarray(query_labels), np.asarray(gallery_labels)
    if query_labels.ndim == 1:
        relevant = query_labels[:, None] == gallery_labels[None, :]
    else:
        relevant = (query_labels @ gallery_labels.T) > 0
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(relevant, order, axis=1)


def query_metrics(rel, top_k, k, levels):
    """The metrics of one query from its ranked relevance flags, by the module docstring."""
    ranks = np.flatnonzero(rel) + 1  # 1-based ranks of the relevant items
    hits = np.arange(1, len(ranks) + 1)
    precision = hits / ranks  # P@rank at each relevant item
    total = len(ranks)  # R
    within = ranks <= top_k
    out = {
        "map": precision.sum() / total if total else 0.0,
        "map@K": precision[within].sum() / within.sum() if within.any() else 0.0,
        "map@r": precision[ranks <= total].sum() / total if total else 0.0,
        "r_precision": np.sum(ranks <= total) / total if total else 0.0,
        "precision@k": np.sum(ranks <= k) / k,
        "recall@k": float(np.any(ranks <= k)),
    }
    for level in levels:
        reached = hits >= level * total - 1e-9  # recall hits / R >= level
        out[f"pr@{level!r}"] = float(precision[reached].max()) if total else 0.0
    return out


def reference(queries, query_labels, gallery, gallery_labels, top_k=1, k=1,
              levels=RECALL_LEVELS):
    """The mean over queries of every metric."""
    rows = [query_metrics(rel, top_k, k, levels)
            for rel in ranked_relevance(queries, query_labels, gallery, gallery_labels)]
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}


# ----- strategies ------------------------------------------------------------------------------

def random_values(rng, rows, d, style):
    if style == "grid":
        return rng.choice(np.array([-0.5, 0.5], np.float32), size=(rows, d))
    return rng.normal(size=(rows, d)).astype(np.float32)


@st.composite
def problems(draw, case, paired=False):
    """A retrieval problem (queries, query labels, gallery, gallery labels) and its options:
    top_k, k (both may exceed the gallery), chunk_size, and whether to pass backend tensors.
    paired: as many queries as gallery items (image/text pairs)."""
    n_queries = draw(st.integers(1, 6))
    n_gallery = n_queries if paired else draw(st.integers(1, 9))
    scale = float(case[len("scale_"):]) if case.startswith("scale_") else None
    style = "normal" if scale else draw(st.sampled_from(["grid", "normal"]))
    d = 4 if style == "grid" else draw(st.integers(2, 6))
    multi_hot = draw(st.booleans())
    n_classes = draw(st.integers(1, 4))
    zero_rows = draw(st.booleans())
    duplicates = draw(st.booleans())
    options = {
        "top_k": draw(st.integers(1, n_gallery + 2)),
        "k": draw(st.integers(1, n_gallery + 2)),
        "chunk_size": draw(st.sampled_from([None, 1, 2, 4])),
        "tensors": draw(st.booleans()),
    }
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))

    queries = random_values(rng, n_queries, d, style)
    gallery = random_values(rng, n_gallery, d, style)
    if case == "identical":  # one repeated gallery point: every query ties it everywhere
        gallery[:] = gallery[0]
        if duplicates:
            queries[:] = gallery[0]
    elif duplicates:  # queries repeated in the gallery: cosine-1 ties with their copies
        copies = rng.integers(0, n_gallery, n_queries)
        gallery[copies] = queries[np.arange(n_queries)]
    if zero_rows and case != "identical":
        gallery[rng.random(n_gallery) < 0.3] = 0.0
        queries[rng.random(n_queries) < 0.3] = 0.0
    if scale:
        queries, gallery = queries * np.float32(scale), gallery * np.float32(scale)

    def labels(rows):
        if case == "one_class":
            return np.ones((rows, 2), np.int64) if multi_hot else np.full(rows, 3)
        if multi_hot:
            return (rng.random((rows, n_classes)) < 0.5).astype(np.int64)
        return rng.integers(0, n_classes, rows)

    query_labels, gallery_labels = labels(n_queries), labels(n_gallery)
    if paired and case != "no_positive":
        gallery_labels = query_labels.copy() if draw(st.booleans()) else gallery_labels
    if case == "no_positive":  # query 0 matches no gallery item, however it ranks
        if multi_hot:
            query_labels[0] = 0
        else:
            query_labels[0] = n_classes + 1
    return (queries, query_labels, gallery, gallery_labels), options


def as_inputs(data, options):
    """The problem as numpy arrays, or as backend tensors (embeddings) and lists (labels)."""
    if not options["tensors"]:
        return data
    queries, query_labels, gallery, gallery_labels = data
    return (keras.ops.convert_to_tensor(queries), list(query_labels.tolist()),
            keras.ops.convert_to_tensor(gallery), keras.ops.convert_to_tensor(gallery_labels))


def assert_metric(value, expected, context):
    assert isinstance(value, float), context
    assert np.isfinite(value) and 0.0 <= value <= 1.0, (context, value)
    assert value == pytest.approx(expected, abs=1e-9), context


# ----- the properties --------------------------------------------------------------------------

METRICS = {
    "mean_average_precision": (
        lambda data, o: mean_average_precision(*data, chunk_size=o["chunk_size"]), "map"),
    "mean_average_precision_top_k": (
        lambda data, o: mean_average_precision(*data, top_k=o["top_k"],
                                               chunk_size=o["chunk_size"]), "map@K"),
    "map_at_r": (lambda data, o: map_at_r(*data, chunk_size=o["chunk_size"]), "map@r"),
    "r_precision": (lambda data, o: r_precision(*data, chunk_size=o["chunk_size"]),
                    "r_precision"),
    "precision_at_k": (lambda data, o: precision_at_k(*data, k=o["k"],
                                                      chunk_size=o["chunk_size"]),
                       "precision@k"),
    "recall_at_k": (lambda data, o: recall_at_k(*data, k=o["k"], chunk_size=o["chunk_size"]),
                    "recall@k"),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("metric", sorted(METRICS))
@examples(8)
@given(data=st.data())
def test_metric_matches_reference(metric, case, data):
    problem, options = data.draw(problems(case), label="problem")
    call, key = METRICS[metric]
    value = call(as_inputs(problem, options), options)
    expected = reference(*problem, top_k=options["top_k"], k=options["k"])
    assert_metric(value, expected[key], f"{metric}, case {case!r}, options {options}")


@pytest.mark.parametrize("case", CASES)
@examples(6)
@given(data=st.data())
def test_retrieval_metrics_matches_reference_in_one_pass(case, data):
    problem, options = data.draw(problems(case), label="problem")
    k, top_k = options["k"], options["top_k"]
    got = retrieval_metrics(*as_inputs(problem, options),
                            metrics=("map", "map@r", "r_precision", "precision", "recall"),
                            top_k=top_k, k_values=(k,), chunk_size=options["chunk_size"])
    assert list(got) == [f"map@{top_k}", "map@r", "r_precision", f"precision@{k}",
                         f"recall@{k}"]
    expected = reference(*problem, top_k=top_k, k=k)
    for key, reference_key in zip(got, ["map@K", "map@r", "r_precision", "precision@k",
                                        "recall@k"]):
        assert_metric(got[key], expected[reference_key], f"{key}, case {case!r}")
    # Without top_k, "map" is the mAP over the whole gallery.
    assert_metric(retrieval_metrics(*problem)["map"], expected["map"], f"map, case {case!r}")


@pytest.mark.parametrize("case", CASES)
@examples(8)
@given(data=st.data())
def test_precision_recall_curve_matches_reference(case, data):
    problem, options = data.draw(problems(case), label="problem")
    got = precision_recall_curve(*as_inputs(problem, options), recall_levels=RECALL_LEVELS,
                                 chunk_size=options["chunk_size"])
    assert got["recall"] == list(RECALL_LEVELS)
    assert len(got["precision"]) == len(RECALL_LEVELS)
    expected = reference(*problem)
    for level, value in zip(RECALL_LEVELS, got["precision"]):
        assert_metric(value, expected[f"pr@{level!r}"], f"recall level {level}, case {case!r}")
    # Interpolated precision never rises with recall.
    by_level = [value for _, value in sorted(zip(RECALL_LEVELS, got["precision"]))]
    assert np.all(np.diff(by_level) <= 1e-12), by_level


@pytest.mark.parametrize("case", CASES)
@examples(6)
@given(data=st.data(), per_side=st.booleans())
def test_evaluate_retrieval_matches_reference_both_ways(case, data, per_side):
    problem, options = data.draw(problems(case, paired=not per_side), label="problem")
    image, image_labels, text, text_labels = problem
    top_k, k = options["top_k"], options["k"]
    metrics = ("map", "map@r", "r_precision", "precision", "recall",
               "precision_at_recall@0.5")
    if per_side:
        labels = {"image_labels": image_labels, "text_labels": text_labels}
    else:  # one set of labels for the pairs
        text_labels = image_labels
        labels = {"labels": image_labels}
    got = evaluate_retrieval(image, text, metrics=metrics, top_k=top_k, k_values=(k,),
                             chunk_size=options["chunk_size"], **labels)
    keys = {f"map@{top_k}": "map@K", "map@r": "map@r", "r_precision": "r_precision",
            f"precision@{k}": "precision@k", f"recall@{k}": "recall@k",
            "precision_at_recall@0.5": "pr@0.5"}
    assert sorted(got) == sorted(f"{way}_{key}" for way in ("i2t", "t2i", "avg") for key in keys)
    i2t = reference(image, image_labels, text, text_labels, top_k, k, levels=(0.5,))
    t2i = reference(text, text_labels, image, image_labels, top_k, k, levels=(0.5,))
    for key, reference_key in keys.items():
        context = f"{key}, case {case!r}, options {options}"
        assert_metric(got[f"i2t_{key}"], i2t[reference_key], context)
        assert_metric(got[f"t2i_{key}"], t2i[reference_key], context)
        assert_metric(got[f"avg_{key}"], (i2t[reference_key] + t2i[reference_key]) / 2,
                      context)
