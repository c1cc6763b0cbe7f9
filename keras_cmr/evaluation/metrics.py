"""Exact, chunked retrieval metrics for cross-modal retrieval (numpy).

One definition, used everywhere in keras_cmr. For each query the gallery is ranked by cosine
similarity (both sides L2-normalised; a zero vector has similarity 0 to everything), highest
first; equal similarities are ordered by gallery index (the lower index first). A gallery item is
relevant to a query when their labels match: the same class id for 1-D labels, at least one
shared label for 2-D multi-hot labels. With rel(i) = 1 when the item at rank i is relevant,
P@i = (1/i) * sum_{j<=i} rel(j), R = the number of relevant gallery items of the query and n the
gallery size:

- AP@all  = (1/R) * sum_{i=1..n} P@i * rel(i)                    ("map", mAP over the whole gallery)
- AP@K    = (1/R_K) * sum_{i=1..K} P@i * rel(i), R_K = relevant items in the top K ("map@K")
- MAP@R   = (1/R) * sum_{i=1..R} P@i * rel(i)   (Musgrave et al., ECCV 2020)  ("map@r")
- R-precision = (relevant items in the top R) / R                             ("r_precision")
- P@k     = (relevant items in the top k) / k; when k > n the top k is the whole gallery and the
  denominator stays k                                                         ("precision@k")
- recall@k = 1 when at least one relevant item is in the top k, else 0        ("recall@k")
- interpolated precision at recall level rho in [0, 1]: max over ranks i with rel(i) = 1 and
  recall (1/R) * sum_{j<=i} rel(j) >= rho of P@i; the points of the precision-recall curve
  (11 levels 0, 0.1, ..., 1 in the CMR literature)                 ("precision_at_recall@rho")

Each metric is the mean over queries; a query without relevant items (R = 0, or R_K = 0) counts 0.

Similarities are float32 and the ranking is exact for them, ties included; the computation is
chunked and O(chunk_size * Ng) in memory (see `keras_cmr.evaluation.ranking`). This module holds
the definitions and the public functions; `inputs` validates their arguments, `plan` turns
metric names into what `ranking` computes, `embedding` runs a model over evaluation pairs.
"""

from keras_cmr.evaluation.inputs import check_dims, check_label_forms, prepare_side
from keras_cmr.evaluation.plan import RECALL_LEVELS, metric_plan
from keras_cmr.evaluation.ranking import rank_metrics
from keras_cmr.utils.checks import check_positive_int


def retrieval_metrics(
    queries,
    query_labels,
    gallery,
    gallery_labels,
    metrics=("map",),
    top_k=None,
    k_values=(1, 5, 10),
    chunk_size=None,
):
    """Several retrieval metrics in one pass over the gallery (definitions: module docstring).

    Args:
        queries: array-like (Nq, d), numpy or backend tensor.
        query_labels: (Nq,) integer class ids or (Nq, L) multi-hot 0/1 labels.
        gallery: array-like (Ng, d).
        gallery_labels: (Ng,) or (Ng, L), the same form as `query_labels`.
        metrics: names among "map", "map@r", "r_precision", "precision", "recall" ("precision"
            and "recall" expand over `k_values`), or "precision@K" / "recall@K", or
            "precision_at_recall@RHO" (RHO a recall level in [0, 1]).
        top_k: None for mAP over the whole gallery; an int K for AP@K (key "map@K").
        k_values: cutoffs for "precision" and "recall".
        chunk_size: queries ranked per chunk; None picks it so that a chunk's work arrays stay
            under about 128 MB.

    Returns:
        dict of Python floats keyed "map" (or "map@K"), "map@r", "r_precision", "precision@k",
        "recall@k", in the order requested.

    Raises:
        ValueError: for arrays that are not 2-D, empty, non-finite (naming the first bad row) or
            of different widths; labels that are not integers, do not match the row count, or
            mix 1-D and multi-hot forms; cutoffs or chunk sizes below 1; unknown metric names.
    """
    plan = metric_plan(metrics, top_k, k_values)
    if chunk_size is not None:
        chunk_size = check_positive_int(chunk_size, "`chunk_size`")
    queries, query_labels = prepare_side(queries, query_labels, "queries", "query_labels")
    gallery, gallery_labels = prepare_side(gallery, gallery_labels, "gallery", "gallery_labels")
    check_dims(queries, gallery, "queries", "gallery")
    check_label_forms(query_labels, gallery_labels, "query_labels", "gallery_labels")
    return rank_metrics(queries, query_labels, gallery, gallery_labels, plan, chunk_size)


def mean_average_precision(
    queries, query_labels, gallery, gallery_labels, top_k=None, chunk_size=None
):
    """mAP: mean over queries of AP = (1/Rq) * sum_{relevant at rank r <= top_k} P@r.

    Rq is the number of relevant items retrieved: within the top `top_k` when given, else all
    relevant gallery items (`top_k=None` is mAP@all). A query with none retrieved counts 0.
    Arguments, ranking and errors as in `retrieval_metrics`.

    Returns:
        float in [0, 1].
    """
    key = "map" if top_k is None else f"map@{top_k}"
    return retrieval_metrics(
        queries, query_labels, gallery, gallery_labels, ("map",), top_k, chunk_size=chunk_size
    )[key]


def map_at_r(queries, query_labels, gallery, gallery_labels, chunk_size=None):
    """MAP@R (Musgrave et al., "A Metric Learning Reality Check", ECCV 2020).

    With R the number of relevant gallery items of a query: MAP@R = (1/R) * sum_{i=1..R} P@i *
    rel(i), averaged over queries (R = 0 counts 0). Arguments as in `retrieval_metrics`.

    Returns:
        float in [0, 1].
    """
    return retrieval_metrics(
        queries, query_labels, gallery, gallery_labels, ("map@r",), chunk_size=chunk_size
    )["map@r"]


def r_precision(queries, query_labels, gallery, gallery_labels, chunk_size=None):
    """R-precision: (relevant items in the top R) / R, averaged over queries (R = 0 counts 0).

    Returns:
        float in [0, 1].
    """
    return retrieval_metrics(
        queries, query_labels, gallery, gallery_labels, ("r_precision",), chunk_size=chunk_size
    )["r_precision"]


def _metric_at_k(metric, k, queries, query_labels, gallery, gallery_labels, chunk_size):
    """`retrieval_metrics`' figure "`metric`@k" alone, k checked."""
    name = f"{metric}@{check_positive_int(k, '`k`')}"
    return retrieval_metrics(queries, query_labels, gallery, gallery_labels, (name,),
                             chunk_size=chunk_size)[name]


def precision_at_k(queries, query_labels, gallery, gallery_labels, k, chunk_size=None):
    """P@k: (relevant items in the top k) / k, averaged over queries.

    When k exceeds the gallery size the top k is the whole gallery; the denominator stays k.

    Returns:
        float in [0, 1].
    """
    return _metric_at_k("precision", k, queries, query_labels, gallery, gallery_labels,
                        chunk_size)


def recall_at_k(queries, query_labels, gallery, gallery_labels, k, chunk_size=None):
    """recall@k: the fraction of queries with at least one relevant item in the top k.

    Returns:
        float in [0, 1].
    """
    return _metric_at_k("recall", k, queries, query_labels, gallery, gallery_labels, chunk_size)


def precision_recall_curve(queries, query_labels, gallery, gallery_labels,
                           recall_levels=RECALL_LEVELS, chunk_size=None):
    """The interpolated precision-recall curve, averaged over queries.

    At each recall level rho, a query's interpolated precision is the highest P@i over the
    ranks i of its relevant items whose recall reaches rho (module docstring); the curve is its
    mean over queries (a query without relevant items counts 0).

    Args:
        queries, query_labels, gallery, gallery_labels, chunk_size: as in `retrieval_metrics`.
        recall_levels: recall levels in [0, 1]; default the 11 levels 0, 0.1, ..., 1.

    Returns:
        dict with "recall" (the levels, a list) and "precision" (a list of the same length).
    """
    levels = [float(level) for level in recall_levels]
    if not levels:
        raise ValueError("`recall_levels` is empty.")
    names = [f"precision_at_recall@{level!r}" for level in levels]
    values = retrieval_metrics(queries, query_labels, gallery, gallery_labels, metrics=names,
                               chunk_size=chunk_size)
    return {"recall": levels, "precision": [values[name] for name in names]}


def evaluate_retrieval(
    image_embeddings,
    text_embeddings,
    labels=None,
    *,
    image_labels=None,
    text_labels=None,
    metrics=("map",),
    top_k=None,
    k_values=(1, 5, 10),
    chunk_size=None,
):
    """Image -> text (I2T) and text -> image (T2I) retrieval, and their average.

    I2T ranks the text embeddings for each image query; T2I ranks the images for each text
    query. Metrics and ranking as in `retrieval_metrics`.

    Args:
        image_embeddings: (Ni, d) image embeddings.
        text_embeddings: (Nt, d) text embeddings in the same space.
        labels: labels of both sides when they are paired row for row (Ni == Nt).
        image_labels, text_labels: per-side labels, instead of `labels`.
        metrics, top_k, k_values, chunk_size: as in `retrieval_metrics`.

    Returns:
        dict with "i2t_<key>", "t2i_<key>" and "avg_<key>" (the mean of the two) for every key
        of `retrieval_metrics`, e.g. "i2t_map", "t2i_map", "avg_map" ("avg_map@K" with top_k).

    Raises:
        ValueError: as `retrieval_metrics`, naming these arguments; also when both `labels` and
            per-side labels, or neither, are given.
    """
    if labels is not None and (image_labels is not None or text_labels is not None):
        raise ValueError("Pass either `labels` or `image_labels`/`text_labels`, not both.")
    image_labels_name, text_labels_name = "image_labels", "text_labels"
    if labels is not None:
        image_labels = text_labels = labels
        image_labels_name = text_labels_name = "labels"
    if image_labels is None or text_labels is None:
        raise ValueError("Pass `labels`, or both `image_labels` and `text_labels`.")
    plan = metric_plan(metrics, top_k, k_values)
    if chunk_size is not None:
        chunk_size = check_positive_int(chunk_size, "`chunk_size`")
    image, image_labels = prepare_side(
        image_embeddings, image_labels, "image_embeddings", image_labels_name
    )
    text, text_labels = prepare_side(
        text_embeddings, text_labels, "text_embeddings", text_labels_name
    )
    check_dims(image, text, "image_embeddings", "text_embeddings")
    check_label_forms(image_labels, text_labels, "image_labels", "text_labels")
    i2t = rank_metrics(image, image_labels, text, text_labels, plan, chunk_size)
    t2i = rank_metrics(text, text_labels, image, image_labels, plan, chunk_size)
    results = {}
    for key in plan:
        results[f"i2t_{key}"] = i2t[key]
        results[f"t2i_{key}"] = t2i[key]
        results[f"avg_{key}"] = (i2t[key] + t2i[key]) / 2
    return results
