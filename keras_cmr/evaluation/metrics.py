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
chunked and O(chunk_size * Ng) in memory (see `keras_cmr.evaluation.ranking`).
"""

import numbers

import keras
import numpy as np

from keras_cmr.distribution import batch_multiple, replicated_inputs
from keras_cmr.evaluation.ranking import rank_metrics

_METRICS = ("map", "map@r", "r_precision", "precision", "recall", "precision_at_recall@RHO")
# The recall levels of the 11-point precision-recall curve.
RECALL_LEVELS = tuple(i / 10 for i in range(11))


def _to_numpy(x, name):
    if isinstance(x, np.ndarray):
        return x
    try:
        return keras.ops.convert_to_numpy(x)
    except (ValueError, TypeError) as error:  # e.g. ragged nested lists
        raise ValueError(f"`{name}` could not be read as an array: {error}") from error


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}.")
    return int(value)


def _prepare_embeddings(x, name):
    """A validated float32 copy of `x` with unit-norm rows (zero rows stay zero)."""
    x = _to_numpy(x, name)
    if x.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D array (rows, dims), got shape {x.shape}.")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"`{name}` is empty (shape {x.shape}): nothing to retrieve.")
    if x.dtype.kind not in "biuf":
        raise ValueError(f"`{name}` must hold real numbers, got dtype {x.dtype}.")
    x = x.astype(np.float64 if x.dtype == np.float64 else np.float32)
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        raise ValueError(
            f"`{name}` holds NaN or inf, first in row {int(np.argmin(finite))}."
        )
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))
    # Rows whose squares overflow or underflow are divided by their largest magnitude first.
    extreme = ~np.isfinite(norm) | (norm < 1e-15)
    if extreme.any():
        rows = x[extreme]
        peak = np.abs(rows).max(axis=1, keepdims=True)
        rows /= np.where(peak > 0, peak, 1)
        x[extreme] = rows
        norm[extreme] = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    x /= np.where(norm > 0, norm, 1)[:, None]
    return np.ascontiguousarray(x, dtype=np.float32)


def _prepare_labels(y, name, rows, rows_name):
    """Class ids as int64 (1-D) or multi-hot labels as 0/1 float32 (2-D), validated."""
    y = _to_numpy(y, name)
    if y.ndim not in (1, 2):
        raise ValueError(
            f"`{name}` must be 1-D class ids or 2-D multi-hot labels, got shape {y.shape}."
        )
    if y.shape[0] != rows:
        raise ValueError(f"`{name}` has {y.shape[0]} rows but `{rows_name}` has {rows}.")
    if y.dtype.kind == "f":
        integral = np.isfinite(y) & (y == np.round(y))
        if not integral.all():
            bad = y.ravel()[np.argmin(integral.ravel())]
            raise ValueError(f"`{name}` must hold integer labels, found {bad!r}.")
    elif y.dtype.kind not in "biu":
        raise ValueError(f"`{name}` must hold integer labels, got dtype {y.dtype}.")
    if y.ndim == 1:
        return y.astype(np.int64)
    if not np.isin(y, (0, 1)).all():
        raise ValueError(
            f"`{name}` is 2-D, so it must be multi-hot (0/1 entries); pass class ids as 1-D."
        )
    return y.astype(np.float32)


def _check_label_forms(query_labels, gallery_labels, query_name, gallery_name):
    if query_labels.ndim != gallery_labels.ndim:
        forms = {1: "1-D class ids", 2: "2-D multi-hot"}
        raise ValueError(
            f"`{query_name}` are {forms[query_labels.ndim]} but `{gallery_name}` are "
            f"{forms[gallery_labels.ndim]}; pass both in the same form."
        )
    if query_labels.ndim == 2 and query_labels.shape[1] != gallery_labels.shape[1]:
        raise ValueError(
            f"`{query_name}` has {query_labels.shape[1]} label columns but `{gallery_name}` "
            f"has {gallery_labels.shape[1]}."
        )


def _metric_plan(metrics, top_k, k_values):
    """Validated ({output key: (kind, cutoff)}) for the requested metric names."""
    if isinstance(metrics, str):
        metrics = (metrics,)
    if top_k is not None:
        top_k = _check_positive_int(top_k, "top_k")
    plan = {}
    for metric in metrics:
        base, _, cutoff = str(metric).partition("@")
        if metric == "map":
            plan["map" if top_k is None else f"map@{top_k}"] = ("map", top_k)
        elif metric in ("map@r", "r_precision"):
            plan[metric] = (metric, None)
        elif base in ("precision", "recall") and not cutoff:
            for k in k_values:
                plan[f"{base}@{_check_positive_int(k, 'k_values')}"] = (base, int(k))
        elif base in ("precision", "recall") and cutoff.isdigit():
            plan[metric] = (base, _check_positive_int(int(cutoff), "k"))
        elif base == "precision_at_recall":
            plan[metric] = (base, _recall_level(cutoff, metric))
        else:
            raise ValueError(
                f"Unknown metric {metric!r}; choose from {_METRICS} or 'precision@K'/'recall@K'."
            )
    return plan


def _recall_level(text, metric):
    try:
        level = float(text)
    except ValueError:
        level = None
    if level is None or not 0.0 <= level <= 1.0:
        raise ValueError(f"{metric!r}: the recall level after '@' must be a number in [0, 1].")
    return level


def _prepare_side(embeddings, labels, name, labels_name):
    x = _prepare_embeddings(embeddings, name)
    return x, _prepare_labels(labels, labels_name, len(x), name)


def _check_dims(queries, gallery, query_name, gallery_name):
    if queries.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"`{query_name}` and `{gallery_name}` have different embedding sizes: "
            f"{queries.shape[1]} vs {gallery.shape[1]}."
        )


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
    plan = _metric_plan(metrics, top_k, k_values)
    if chunk_size is not None:
        chunk_size = _check_positive_int(chunk_size, "chunk_size")
    queries, query_labels = _prepare_side(queries, query_labels, "queries", "query_labels")
    gallery, gallery_labels = _prepare_side(gallery, gallery_labels, "gallery", "gallery_labels")
    _check_dims(queries, gallery, "queries", "gallery")
    _check_label_forms(query_labels, gallery_labels, "query_labels", "gallery_labels")
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


def precision_at_k(queries, query_labels, gallery, gallery_labels, k, chunk_size=None):
    """P@k: (relevant items in the top k) / k, averaged over queries.

    When k exceeds the gallery size the top k is the whole gallery; the denominator stays k.

    Returns:
        float in [0, 1].
    """
    k = _check_positive_int(k, "k")
    return retrieval_metrics(
        queries, query_labels, gallery, gallery_labels, (f"precision@{k}",), chunk_size=chunk_size
    )[f"precision@{k}"]


def recall_at_k(queries, query_labels, gallery, gallery_labels, k, chunk_size=None):
    """recall@k: the fraction of queries with at least one relevant item in the top k.

    Returns:
        float in [0, 1].
    """
    k = _check_positive_int(k, "k")
    return retrieval_metrics(
        queries, query_labels, gallery, gallery_labels, (f"recall@{k}",), chunk_size=chunk_size
    )[f"recall@{k}"]


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
    plan = _metric_plan(metrics, top_k, k_values)
    if chunk_size is not None:
        chunk_size = _check_positive_int(chunk_size, "chunk_size")
    image, image_labels = _prepare_side(
        image_embeddings, image_labels, "image_embeddings", image_labels_name
    )
    text, text_labels = _prepare_side(
        text_embeddings, text_labels, "text_embeddings", text_labels_name
    )
    _check_dims(image, text, "image_embeddings", "text_embeddings")
    _check_label_forms(image_labels, text_labels, "image_labels", "text_labels")
    i2t = rank_metrics(image, image_labels, text, text_labels, plan, chunk_size)
    t2i = rank_metrics(text, text_labels, image, image_labels, plan, chunk_size)
    results = {}
    for key in plan:
        results[f"i2t_{key}"] = i2t[key]
        results[f"t2i_{key}"] = t2i[key]
        results[f"avg_{key}"] = (i2t[key] + t2i[key]) / 2
    return results


def evaluate_model(model, image, text, labels, batch_size=256, **kwargs):
    """Embeds `image` and `text` with `model` and runs `evaluate_retrieval` on the embeddings.

    Args:
        model: a keras_cmr model: `model.predict({"image": ..., "text": ...})` returns a dict
            with at least the keys "image" and "text" (the embeddings).
        image, text: model inputs, paired row for row.
        labels: labels of the pairs (see `evaluate_retrieval`).
        batch_size: prediction batch size.
        **kwargs: passed to `evaluate_retrieval` (metrics, top_k, k_values, chunk_size).

    Returns:
        The dict of `evaluate_retrieval`.

    Raises:
        ValueError: when the model's output is not a dict with "image" and "text".
    """
    return evaluate_retrieval(*_embed(model, image, text, batch_size), labels, **kwargs)


def _embed(model, image, text, batch_size=256):
    """(image embeddings, text embeddings) from `model.predict({"image": ..., "text": ...})`.

    Raises:
        ValueError: when the prediction is not a dict with the keys "image" and "text".
    """
    # A JAX distribution shards every batch over its devices: repeat the last row up to a
    # multiple of their count, and drop the copies' embeddings.
    devices, count = batch_multiple(), len(image)
    if devices > 1:
        pad = -count % devices
        image, text = (np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) if pad else a
                       for a in (np.asarray(image), np.asarray(text)))
        batch_size = -(-batch_size // devices) * devices
    with replicated_inputs():  # multi-process JAX: every process embeds all rows
        outputs = model.predict({"image": image, "text": text}, batch_size=batch_size,
                                verbose=0)
    if not isinstance(outputs, dict) or not {"image", "text"} <= outputs.keys():
        keys = f" with keys {sorted(outputs)}" if isinstance(outputs, dict) else ""
        raise ValueError(
            "model.predict must return a dict with keys 'image' and 'text' (the embeddings), "
            f"got {type(outputs).__name__}{keys}."
        )
    return outputs["image"][:count], outputs["text"][:count]
