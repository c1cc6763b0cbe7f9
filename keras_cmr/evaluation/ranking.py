"""The ranking engine behind `keras_cmr.evaluation.metrics`: exact, chunked, no argsort.

Similarities are float32, one BLAS matmul per chunk of queries; duplicate gallery rows are
scored once, so they tie exactly. Ranks are exact for these float32 values without an argsort:
each score maps to an int32 of the same order with the relevance flag as its lowest bit
(|cos| < 2 leaves a bit free), rows are sorted by value only, and the relevant items' ranks are
read off the flags. Where a relevant item ties with an irrelevant one, the tied items are
re-ranked by gallery index (the whole row is re-sorted with the index in an int64 key when it
has many such ties).

Cost: O(Nq * Ng * d) for the matmuls plus O(Nq * Ng * log Ng) for the row sorts, which run in
one thread per CPU; memory O(chunk_size * Ng + (Nq + Ng) * d + Nq), never Nq * Ng.
"""

import contextlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from keras_cmr.utils.threads import CPU_WORKERS, one_blas_thread

# The automatic chunk size keeps a chunk's float32 scores under this many bytes.
_CHUNK_BYTES = 128 * 2**20
# Scores ranked per block: the key, sort and rank arrays of a block stay in cache.
_BLOCK_SCORES = 2**17
# Threads that rank blocks in parallel: the CPUs this process may run on.
_WORKERS = CPU_WORKERS
# numpy's `nonzero` of a bool array scans with memchr when at most 10% of it is True, 2.5x
# slower than its branchless loop at 5-10% True (our measurement, numpy 2.4; ten balanced
# classes sit right at 10%). Blocks with more than _PAD_FROM of relevant items get True padding
# appended past 10%; below that the memchr loop is the faster one.
_NONZERO_SPARSE = 0.1
_PAD_FROM = 0.04
# Rows with more tie groups than this are re-sorted whole instead of fixed group by group.
_MAX_TIE_GROUPS = 8
# Matmuls below this many multiply-adds run in one BLAS thread (`one_blas_thread`: a
# 217 x 256 x 217 product, a Wikipedia validation split, took 30 ms in OpenBLAS' two threads on
# the loaded 2-core VM, 0.6 ms in one), and chunks below one block are ranked in one thread.
_ONE_THREAD_MULTIPLY_ADDS = 2**26


def _deduplicate(rows):
    """(unique rows, inverse) when float32 `rows` repeats a row, else (rows, None)."""
    # Equal rows have equal integer hashes; only a hash collision needs the exact byte sort.
    bits = rows.view(np.uint32)
    weights = np.random.default_rng(0).integers(1, 2**63, rows.shape[1], dtype=np.uint64)
    hashes = np.concatenate(
        [(bits[i : i + 1024] * weights).sum(axis=1) for i in range(0, len(rows), 1024)]
    )
    if len(np.unique(hashes)) == len(rows):
        return rows, None
    row_bytes = rows.view(np.dtype((np.void, rows.itemsize * rows.shape[1]))).ravel()
    _, first, inverse = np.unique(row_bytes, return_index=True, return_inverse=True)
    return (rows, None) if len(first) == len(rows) else (rows[first], inverse)


def _relevance(query_labels, gallery_labels, out=None):
    """(queries, gallery) bool: same class id, or at least one shared multi-hot label."""
    if gallery_labels.ndim == 1:
        return np.equal(query_labels[:, None], gallery_labels[None, :], out=out)
    return np.greater(query_labels @ gallery_labels.T, 0.5, out=out)


def _order_keys(scores, relevant, out=None, scratch=None):
    """int32 keys 2 * v + rel of float32 `scores`, v an int of the same order as the score.

    v is the float's magnitude bits m for scores >= +0.0 and -1 - m for scores <= -0.0, so
    -0.0 gets v = -1, not +0.0's 0 (`_relevant_ranks` re-sorts the rows where that matters).
    |cos| < 2 keeps bit 30 clear: shifting left drops only the sign bit, and bits >> 30 is 0,
    or -2 for a negative score, whose xor with 2m is -2 - 2m. Four passes where v = -m took
    five. `out` and `scratch` (int32, the scores' shape) spare the allocations.
    """
    bits = scores.view(np.int32)
    sign = np.right_shift(bits, 30, out=scratch)
    keys = np.left_shift(bits, 1, out=out)
    keys ^= sign
    keys |= relevant
    return keys


def _low_bit(keys, out=None):
    """The relevance bits of `keys` as bool (nonzero is much faster on bool than on ints)."""
    out = np.empty(keys.shape, bool) if out is None else out
    return np.bitwise_and(keys, 1, out=out, casting="unsafe")


def _relevant_positions(keys, n_relevant, flags):
    """Ascending flat positions of the odd (relevant) `keys`, `n_relevant` of them.

    `flags`: a 1-D bool work array with room for `keys.size + _padding(keys.size, n_relevant)`
    items; the padding is True, so that `nonzero` runs its branchless loop.
    """
    size = keys.size
    padding = _padding(size, int(n_relevant))
    _low_bit(keys.ravel(), out=flags[:size])
    flags[size : size + padding] = True
    return np.flatnonzero(flags[: size + padding])[:n_relevant]


def _padding(size, n_relevant):
    """True items to append to `size` flags with `n_relevant` True to pass 10% True."""
    if not _PAD_FROM * size < n_relevant <= _NONZERO_SPARSE * size:
        return 0
    return int((_NONZERO_SPARSE * size - n_relevant) / (1 - _NONZERO_SPARSE)) + 1


def _stable_columns(scores, relevant):
    """Sorted columns of the relevant items of each row, equal scores ordered by index.

    Each key widens to int64 as (v, n - 1 - index, rel), so a value-only sort is the stable one.
    """
    tiebreak = np.arange(scores.shape[1] - 1, -1, -1, dtype=np.int64) << 1
    # Adding +0.0 turns -0.0 into +0.0, so the two equal scores get one v.
    wide = _order_keys(scores + np.float32(0.0), relevant).astype(np.int64)
    wide >>= 1
    wide <<= 33
    wide |= tiebreak
    wide |= relevant
    wide.sort(axis=1)
    return np.nonzero(_low_bit(wide))[1]


def _reorder_tie_groups(scores, relevant, columns, group_rows, group_hits, group_keys):
    """Re-ranks the relevant items of tie groups by gallery index, in `columns` (in place).

    A group is the set of items of row `group_rows[g]` whose key is `group_keys[g]` (2v + 1)
    or 2v, i.e. whose score equals the score v stands for; its relevant items are the hits
    `group_hits[g]`, `group_hits[g] + 1`, ... of `columns`, ascending. The group keeps its
    columns; they are handed out by gallery index instead.
    """
    # The float32 score of each group: v is the magnitude bits m, or -1 - m = ~m with the sign.
    v = group_keys >> 1
    values = np.where(v >= 0, v, ~v | np.int32(-(2**31))).view(np.float32)
    # One scan of its row per group: gathering the rows first copied them (slower at 40k, our
    # measurement).
    found = [np.flatnonzero(scores[row] == value) for row, value in zip(group_rows, values)]
    sizes = np.array([len(members) for members in found])
    group = np.repeat(np.arange(len(found)), sizes)
    index = np.concatenate(found)
    is_relevant = relevant[group_rows[group], index]
    # t: place of a member within its group by gallery index; j: the same among relevant.
    t = np.arange(len(group)) - (np.cumsum(sizes) - sizes)[group]
    n_relevant = np.bincount(group[is_relevant], minlength=len(group_rows))
    group, t = group[is_relevant], t[is_relevant]
    j = np.arange(len(group)) - (np.cumsum(n_relevant) - n_relevant)[group]
    first_hit = group_hits[group]
    top_column = columns[first_hit] + n_relevant[group] - 1
    columns[first_hit + n_relevant[group] - 1 - j] = top_column - t


def _block_ranks(scores, relevant, buffers):
    """Ranks of the relevant items in each row of a block of float32 `scores`.

    Returns `counts` (relevant items per row) and, for every relevant pair in row-major order,
    its `rows` index, its 1-based `ranks` (descending within a row) and `k` (how many relevant
    items rank at or above it), so P@rank = k / rank. `buffers`: int32, int32 and bool work
    arrays of the block's shape, and the padded flags of `_relevant_positions`.
    """
    n_rows, n_cols = scores.shape
    n_relevant = np.count_nonzero(relevant)
    keys = _order_keys(scores, relevant, out=buffers[0], scratch=buffers[1])
    keys.sort(axis=1)
    flat = keys.ravel()
    positions = _relevant_positions(keys, n_relevant, buffers[2])
    ends = np.searchsorted(positions, np.arange(1, n_rows + 1) * n_cols)
    counts = ends.copy()  # np.diff(ends, prepend=0) without its per-call overhead
    counts[1:] -= ends[:-1]
    rows = np.repeat(np.arange(n_rows), counts)
    columns = positions - np.repeat(np.arange(0, n_rows * n_cols, n_cols), counts)
    # A relevant key 2v+1 right after an irrelevant 2v starts a tie group: equal scores that
    # the value sort did not order by gallery index.
    hit_keys = flat[positions]
    group_hits = np.flatnonzero((columns > 0) & (flat[positions - 1] == hit_keys - 1))
    # A relevant item scoring +-0.0 (key -1 or 1) may tie with an item of the other zero,
    # whose key differs (`_order_keys`): such rows are re-sorted whole.
    zero_hits = np.flatnonzero(np.abs(hit_keys) == 1)
    if len(group_hits) or len(zero_hits):
        group_rows = rows[group_hits]
        # Few groups in a row: fix them in place (O(n) each); many: re-sort the row stably.
        crowded = np.bincount(group_rows, minlength=n_rows) > _MAX_TIE_GROUPS
        crowded[rows[zero_hits]] = True
        few = ~crowded[group_rows]
        if few.any():
            _reorder_tie_groups(scores, relevant, columns, group_rows[few], group_hits[few],
                                hit_keys[group_hits[few]])
        if crowded.any():
            columns[crowded[rows]] = _stable_columns(scores[crowded], relevant[crowded])
    ranks = n_cols - columns  # ascending columns of the sort are descending ranks
    k = np.repeat(ends, counts) - np.arange(len(rows))
    return counts, rows, ranks, k


def _query_values(counts, rows, ranks, k, plan):
    """Per-query values of every planned metric, as {key: array}."""
    n_rows = len(counts)
    precision = k / ranks
    per_row = lambda weights: np.bincount(rows, weights=weights, minlength=n_rows)  # noqa: E731
    hits_within = lambda mask: np.bincount(rows[mask], minlength=n_rows)  # noqa: E731
    safe_counts = np.maximum(counts, 1)
    values = {}
    interpolated = None
    for key, (kind, cutoff) in plan.items():
        if kind == "precision_at_recall":
            if interpolated is None:
                interpolated = _interpolated_precision(rows, precision)
            values[key] = _precision_at_recall(interpolated, counts, cutoff)
        elif kind == "map" and cutoff is None:
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
            values[key] = (_first_ranks(counts, ranks) <= cutoff).astype(np.float64)
    return values


def _first_ranks(counts, ranks):
    """Per row: the best rank of a relevant item (inf for rows without relevant)."""
    first_rank = np.full(len(counts), np.inf)
    has_relevant = counts > 0
    first_rank[has_relevant] = ranks[np.cumsum(counts)[has_relevant] - 1]
    return first_rank


def _interpolated_precision(rows, precision):
    """max of P over the relevant items ranked at or below each one, within its row.

    Within a row the relevant items come best rank last, so this is a running maximum; adding
    2 * row (P <= 1) keeps it from crossing rows.
    """
    offset = 2.0 * rows
    return np.maximum.accumulate(precision + offset) - offset


def _precision_at_recall(interpolated, counts, level):
    """Per row: the interpolated precision at recall `level` (0 for rows without relevant)."""
    values = np.zeros(len(counts))
    has_relevant = counts > 0
    # The first relevant item (k-th best) whose recall k / R reaches the level; rounding keeps
    # e.g. 0.3 * 10 from counting as 3.0000000000000004.
    k = np.maximum(np.ceil(np.round(level * counts[has_relevant], 9)), 1).astype(np.int64)
    starts = (np.cumsum(counts) - counts)[has_relevant]
    values[has_relevant] = interpolated[starts + counts[has_relevant] - k]
    return values


def _rank_rows(scores, query_labels, gallery_labels, plan, out):
    """Writes the metric values of each row of `scores` into `out` ({key: array}), by blocks."""
    n_rows, n_cols = scores.shape
    block = max(1, min(_BLOCK_SCORES // n_cols, n_rows))
    # Reused across blocks: fresh arrays would page-fault on every block.
    buffers = [np.empty((block, n_cols), dtype) for dtype in (bool, np.int32, np.int32)]
    size = block * n_cols
    flags = np.empty(size + _padding(size, int(_PAD_FROM * size) + 1), bool)
    for start in range(0, n_rows, block):
        rows = slice(start, min(start + block, n_rows))
        blocks = [buffer[: rows.stop - start] for buffer in buffers]
        relevant = _relevance(query_labels[rows], gallery_labels, out=blocks[0])
        ranked = _block_ranks(scores[rows], relevant, blocks[1:] + [flags])
        for key, values in _query_values(*ranked, plan).items():
            out[key][rows] = values


def rank_metrics(queries, query_labels, gallery, gallery_labels, plan, chunk_size):
    """The mean over queries of each metric in `plan`.

    Args:
        queries, gallery: float32 arrays with unit-norm (or zero) rows, C-contiguous.
        query_labels, gallery_labels: int class ids (1-D) or 0/1 float32 multi-hot (2-D).
        plan: {output key: (kind, cutoff)}, kind among "map" (cutoff None or K), "map@r",
            "r_precision", "precision" and "recall" (cutoff k), "precision_at_recall"
            (cutoff: the recall level in [0, 1]).
        chunk_size: queries per matmul; None keeps a chunk's scores under about 128 MB.

    Returns:
        {output key: float}.
    """
    n_queries, n_gallery = len(queries), len(gallery)
    if gallery_labels.ndim == 1:
        # Dense class codes in the narrowest integer type keep the label compare in cache.
        codes = np.unique(np.concatenate([query_labels, gallery_labels]), return_inverse=True)[1]
        codes = codes.astype(np.min_scalar_type(codes.max()))
        query_labels, gallery_labels = codes[:n_queries], codes[n_queries:]
    # A matmul may round the same dot product differently at different tile positions, so
    # duplicate gallery rows are scored once and copied: their tie is then exact.
    unique_rows, inverse = _deduplicate(gallery)
    if chunk_size is None:
        # float32 scores, plus the unique rows' scores while they are copied out.
        chunk_size = max(1, _CHUNK_BYTES // ((4 if inverse is None else 8) * n_gallery))
    chunk_size = min(chunk_size, n_queries)
    values = {key: np.zeros(n_queries) for key in plan}
    # One score buffer for all chunks: no second chunk alive, no fresh pages per chunk.
    buffer = np.empty((chunk_size, n_gallery), np.float32)
    if inverse is not None:
        unique_buffer = np.empty((chunk_size, len(unique_rows)), np.float32)
    # The matmul of a chunk runs in BLAS' threads, which share the gallery's packed panels:
    # chunks scored in parallel, one BLAS thread each, read the gallery once per thread and
    # were slower at 40k (our measurement, benchmarks/README.md "Second round").
    workers = min(_WORKERS, chunk_size) if chunk_size * n_gallery > _BLOCK_SCORES else 1
    small_product = chunk_size * len(unique_rows) * queries.shape[1] < _ONE_THREAD_MULTIPLY_ADDS
    with ThreadPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:
        for start in range(0, n_queries, chunk_size):
            chunk = slice(start, min(start + chunk_size, n_queries))
            scores = buffer[: chunk.stop - start]
            if inverse is None:
                with one_blas_thread(small_product):
                    np.matmul(queries[chunk], unique_rows.T, out=scores)
            else:
                unique_scores = unique_buffer[: chunk.stop - start]
                with one_blas_thread(small_product):
                    np.matmul(queries[chunk], unique_rows.T, out=unique_scores)
                np.take(unique_scores, inverse, axis=1, out=scores)
            # Each worker ranks a contiguous share of the chunk's rows; numpy releases the GIL
            # in its sorts and element-wise loops, so the shares run in parallel.
            bounds = start + np.linspace(0, len(scores), workers + 1).astype(int)
            jobs = [
                (scores[a - start : b - start], query_labels[a:b], gallery_labels, plan,
                 {key: array[a:b] for key, array in values.items()})
                for a, b in zip(bounds[:-1], bounds[1:])
            ]
            list((pool.map if pool else map)(_rank_rows, *zip(*jobs)))
    return {key: float(array.mean()) for key, array in values.items()}
