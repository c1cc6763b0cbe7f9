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

Each metric is the mean over queries; a query without relevant items (R = 0, or R_K = 0) counts 0.

Similarities are float32 (one BLAS matmul per chunk of queries). Ranks are exact for those
float32 values, ties included, without a full argsort: each similarity is mapped to an int32 of
the same order with the relevance flag in its lowest bit (|cos| < 2 leaves a bit free), the rows
are sorted by value only, and the relevant items' ranks are read off the flag bits. A row where a
relevant item ties in value with an irrelevant one is re-ranked with a stable argsort, so the
tie-break by gallery index holds.

Cost: O(Nq * Ng * d) for the matmuls plus O(Nq * Ng * log Ng) for the row sorts; memory
O(chunk_size * Ng + (Nq + Ng) * d), never Nq * Ng.
"""

import numbers

import keras
import numpy as np

# The automatic chunk size keeps one chunk's work arrays under this many bytes.
_CHUNK_BYTES = 128 * 2**20
# Bytes per (query, gallery) score: the float32 score and the tie-breaking work arrays of half
# the rows (int64 keys, bool masks).
_BYTES_PER_SCORE = 14
# Scores ranked per block: the key, sort and flag passes then run in cache.
_BLOCK_SCORES = 2**15
# Bytes per relevant (query, gallery) pair: positions, rows, ranks, k, precisions, masks.
_BYTES_PER_HIT = 80
# Rows with more tie groups than this are re-sorted whole instead of fixed group by group.
_MAX_TIE_GROUPS = 8
_METRICS = ("map", "map@r", "r_precision", "precision", "recall")


def _to_numpy(x):
    return x if isinstance(x, np.ndarray) else keras.ops.convert_to_numpy(x)


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}.")
    return int(value)


def _prepare_embeddings(x, name):
    """A validated float32 copy of `x` with unit-norm rows (zero rows stay zero)."""
    x = _to_numpy(x)
    if x.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D array (rows, dims), got shape {x.shape}.")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"`{name}` is empty (shape {x.shape}): nothing to retrieve.")
    if x.dtype.kind in "OSUMm":
        raise ValueError(f"`{name}` must hold numbers, got dtype {x.dtype}.")
    x = x.astype(np.float64 if x.dtype == np.float64 else np.float32)
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        raise ValueError(
            f"`{name}` holds NaN or inf, first in row {int(np.argmin(finite))}."
        )
    # Dividing by the row's largest magnitude first keeps the squared norm from overflowing.
    peak = np.abs(x).max(axis=1, keepdims=True)
    x /= np.where(peak > 0, peak, 1)
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    x /= np.where(norm > 0, norm, 1)
    return np.ascontiguousarray(x, dtype=np.float32)


def _prepare_labels(y, name, rows, rows_name):
    """Class ids as int64 (1-D) or multi-hot labels as 0/1 float32 (2-D), validated."""
    y = _to_numpy(y)
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
        else:
            raise ValueError(
                f"Unknown metric {metric!r}; choose from {_METRICS} or 'precision@K'/'recall@K'."
            )
    return plan


def _relevance(query_labels, gallery_labels, out=None):
    """(queries, gallery) bool: same class id, or at least one shared multi-hot label."""
    if gallery_labels.ndim == 1:
        return np.equal(query_labels[:, None], gallery_labels[None, :], out=out)
    return np.greater(query_labels @ gallery_labels.T, 0.5, out=out)


def _order_keys(scores, relevant, out=None, scratch=None):
    """int32 keys 2 * v + rel of float32 `scores`, v an int of the same order as the score.

    v is the float's magnitude bits, negated for negative floats (-0.0 and 0.0 both give 0).
    |cos| < 2 keeps bit 30 clear, so shifting left drops only the sign bit and loses nothing.
    `out` and `scratch`, int32 arrays of the scores' shape, avoid allocations.
    """
    bits = scores.view(np.int32)
    sign = np.right_shift(bits, 31, out=scratch)
    keys = np.left_shift(bits, 1, out=out)
    keys ^= sign
    keys -= sign
    keys |= relevant
    return keys


def _stable_columns(scores, labels, rows):
    """Sorted columns of the relevant items in `rows`, equal scores ordered by gallery index.

    Each key widens to int64 as (v, n - 1 - index, rel), so a value-only sort is the stable one.
    `labels` is the pair (query labels of the chunk, gallery labels).
    """
    n_cols = scores.shape[1]
    tiebreak = np.arange(n_cols - 1, -1, -1, dtype=np.int64) << 1
    columns = []
    # Half a chunk at a time: the int64 work arrays then fit in the chunk's budget.
    for group in np.array_split(rows, -(-2 * len(rows) // len(scores))):
        relevant = _relevance(labels[0][group], labels[1])
        wide = _order_keys(scores[group], relevant).astype(np.int64)
        wide >>= 1
        wide <<= 33
        wide |= tiebreak
        wide |= relevant
        wide.sort(axis=1)
        columns.append(np.nonzero(np.bitwise_and(wide, 1, out=relevant, casting="unsafe"))[1])
    return np.concatenate(columns)


def _pair_relevance(query_labels, gallery_labels):
    """Relevance of aligned pairs: query_labels[i] against gallery_labels[i]."""
    if gallery_labels.ndim == 1:
        return query_labels == gallery_labels
    return np.einsum("ij,ij->i", query_labels, gallery_labels) > 0.5


def _reorder_tie_groups(scores, labels, columns, group_rows, group_hits, group_keys):
    """Re-ranks the relevant items of tie groups by gallery index, in `columns` (in place).

    A group is the set of items of row `group_rows[g]` whose key is `group_keys[g]` (2v + 1)
    or 2v, i.e. whose score equals the score v stands for; its relevant items are the hits
    `group_hits[g]`, `group_hits[g] + 1`, ... of `columns`, ascending. The group keeps its
    columns; they are handed out by gallery index instead.
    """
    # The float32 score of each group: v is the magnitude bits, negated for negative scores.
    v = group_keys >> 1
    values = np.where(v >= 0, v, -v | np.int32(-(2**31))).astype(np.int32).view(np.float32)
    n_groups = len(group_rows)
    for batch in np.array_split(np.arange(n_groups), -(-2 * n_groups // len(scores))):
        rows = group_rows[batch]
        group, index = np.nonzero(scores[rows] == values[batch, None])
        is_relevant = _pair_relevance(labels[0][rows[group]], labels[1][index])
        sizes = np.bincount(group, minlength=len(batch))
        # t: place of a member within its group by gallery index; j: the same among relevant.
        t = np.arange(len(group)) - (np.cumsum(sizes) - sizes)[group]
        n_relevant = np.bincount(group[is_relevant], minlength=len(batch))
        group, t = group[is_relevant], t[is_relevant]
        j = np.arange(len(group)) - (np.cumsum(n_relevant) - n_relevant)[group]
        first_hit = group_hits[batch][group]
        top_column = columns[first_hit] + n_relevant[group] - 1
        columns[first_hit + n_relevant[group] - 1 - j] = top_column - t


def _relevant_ranks(scores, query_labels, gallery_labels):
    """Ranks of the relevant items in each row of float32 `scores` (queries x gallery).

    Returns `counts` (relevant items per row) and, for every relevant pair in row-major order,
    its `rows` index, its 1-based `ranks` (descending within a row) and `k` (how many relevant
    items rank at or above it), so P@rank = k / rank.
    """
    n_rows, n_cols = scores.shape
    labels = (query_labels, gallery_labels)
    positions, group_hits, group_keys = [], [], []
    n_hits = 0
    # A few rows at a time in reused buffers, so that the key, sort and flag passes run in
    # cache without allocating.
    block = max(1, _BLOCK_SCORES // n_cols)
    buffers = [np.empty((min(block, n_rows), n_cols), dtype) for dtype in (np.int32, np.int32, bool)]
    for start in range(0, n_rows, block):
        stop = min(start + block, n_rows)
        keys, scratch, flags = (buffer[: stop - start] for buffer in buffers)
        _relevance(query_labels[start:stop], gallery_labels, out=flags)
        _order_keys(scores[start:stop], flags, out=keys, scratch=scratch)
        keys.sort(axis=1)
        flat = keys.ravel()
        hits = np.flatnonzero(np.bitwise_and(keys, 1, out=flags, casting="unsafe"))
        # A relevant key 2v+1 right after an irrelevant 2v starts a tie group: equal scores
        # that the value sort did not order by gallery index.
        tied = np.flatnonzero((hits % n_cols > 0) & (flat[hits - 1] == flat[hits] - 1))
        positions.append(hits + start * n_cols)
        group_hits.append(tied + n_hits)
        group_keys.append(flat[hits[tied]])
        n_hits += len(hits)
    positions = np.concatenate(positions)
    rows = positions // n_cols
    counts = np.bincount(rows, minlength=n_rows)
    columns = positions - rows * n_cols
    del positions
    group_hits, group_keys = np.concatenate(group_hits), np.concatenate(group_keys)
    if len(group_hits):
        group_rows = rows[group_hits]
        # Few groups in a row: fix them in place (O(n) each); many: re-sort the row stably.
        crowded = np.bincount(group_rows, minlength=n_rows) > _MAX_TIE_GROUPS
        few = ~crowded[group_rows]
        if few.any():
            _reorder_tie_groups(scores, labels, columns, group_rows[few], group_hits[few],
                                group_keys[few])
        if crowded.any():
            columns[crowded[rows]] = _stable_columns(scores, labels, np.flatnonzero(crowded))
    ranks = n_cols - columns  # ascending columns of the sort are descending ranks
    k = np.cumsum(counts)[rows] - np.arange(len(rows))
    return counts, rows, ranks, k


def _chunk_scores(counts, rows, ranks, k, plan):
    """Per-query values of every planned metric for one chunk, as {key: array}."""
    n_rows = len(counts)
    precision = k / ranks
    per_row = lambda weights: np.bincount(rows, weights=weights, minlength=n_rows)  # noqa: E731
    hits_within = lambda mask: np.bincount(rows[mask], minlength=n_rows)  # noqa: E731
    safe_counts = np.maximum(counts, 1)
    first_rank = np.full(n_rows, np.iinfo(np.int64).max)
    has_relevant = counts > 0
    first_rank[has_relevant] = ranks[np.cumsum(counts)[has_relevant] - 1]
    values = {}
    for key, (kind, cutoff) in plan.items():
        if kind == "map" and cutoff is None:
            values[key] = per_row(precision) / safe_counts
        elif kind == "map":
            within = ranks <= cutoff
            values[key] = per_row(precision * within) / np.maximum(hits_within(within), 1)
        elif kind == "map@r":
            values[key] = per_row(precision * (ranks <= counts[rows])) / safe_counts
        elif kind == "r_precision":
            values[key] = hits_within(ranks <= counts[rows]) / safe_counts
        elif kind == "precision":
            values[key] = hits_within(ranks <= cutoff) / cutoff
        else:
            values[key] = (first_rank <= cutoff).astype(np.float64)
    return values


def _evaluate(queries, query_labels, gallery, gallery_labels, plan, chunk_size):
    """Mean of each planned metric; all inputs already prepared and validated."""
    n_gallery = len(gallery)
    if gallery_labels.ndim == 1:
        # Dense class codes in the narrowest integer type keep the per-row compare in cache.
        codes = np.unique(np.concatenate([query_labels, gallery_labels]), return_inverse=True)[1]
        codes = codes.astype(np.min_scalar_type(codes.max()))
        query_labels, gallery_labels = codes[: len(queries)], codes[len(queries) :]
    if chunk_size is None:
        if gallery_labels.ndim == 1:
            max_relevant = np.unique(gallery_labels, return_counts=True)[1].max()
        else:
            max_relevant = n_gallery
        per_query = _BYTES_PER_SCORE * n_gallery + _BYTES_PER_HIT * int(max_relevant)
        chunk_size = max(1, _CHUNK_BYTES // per_query)
    # A matmul may round the same dot product differently at different tile positions, so
    # duplicate gallery rows are scored once and copied: their tie is then exact.
    row_bytes = gallery.view(np.dtype((np.void, gallery.itemsize * gallery.shape[1]))).ravel()
    _, first, inverse = np.unique(row_bytes, return_index=True, return_inverse=True)
    unique_rows, inverse = gallery[first], None if len(first) == n_gallery else inverse
    totals = dict.fromkeys(plan, 0.0)
    for start in range(0, len(queries), chunk_size):
        stop = min(start + chunk_size, len(queries))
        if inverse is None:
            scores = queries[start:stop] @ gallery.T
        else:
            scores = (queries[start:stop] @ unique_rows.T)[:, inverse]
        ranked = _relevant_ranks(scores, query_labels[start:stop], gallery_labels)
        for key, values in _chunk_scores(*ranked, plan).items():
            totals[key] += float(values.sum())
    return {key: total / len(queries) for key, total in totals.items()}


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
            and "recall" expand over `k_values`), or "precision@K" / "recall@K".
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
    return _evaluate(queries, query_labels, gallery, gallery_labels, plan, chunk_size)


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
    if labels is not None:
        image_labels = text_labels = labels
    if image_labels is None or text_labels is None:
        raise ValueError("Pass `labels`, or both `image_labels` and `text_labels`.")
    plan = _metric_plan(metrics, top_k, k_values)
    if chunk_size is not None:
        chunk_size = _check_positive_int(chunk_size, "chunk_size")
    image, image_labels = _prepare_side(
        image_embeddings, image_labels, "image_embeddings", "image_labels"
    )
    text, text_labels = _prepare_side(text_embeddings, text_labels, "text_embeddings", "text_labels")
    _check_dims(image, text, "image_embeddings", "text_embeddings")
    _check_label_forms(image_labels, text_labels, "image_labels", "text_labels")
    i2t = _evaluate(image, image_labels, text, text_labels, plan, chunk_size)
    t2i = _evaluate(text, text_labels, image, image_labels, plan, chunk_size)
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
    outputs = model.predict({"image": image, "text": text}, batch_size=batch_size, verbose=0)
    if not isinstance(outputs, dict) or not {"image", "text"} <= outputs.keys():
        raise ValueError(
            "model.predict must return a dict with keys 'image' and 'text' (the embeddings), "
            f"got {type(outputs).__name__}"
            + (f" with keys {sorted(outputs)}" if isinstance(outputs, dict) else "")
            + "."
        )
    return evaluate_retrieval(outputs["image"], outputs["text"], labels, **kwargs)
