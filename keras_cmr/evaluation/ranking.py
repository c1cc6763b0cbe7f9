"""The ranking engine behind `keras_cmr.evaluation.metrics`: exact, chunked, no argsort.

Similarities are float32: each worker thread scores its share of a chunk of queries with a
one-thread BLAS matmul, then ranks it; duplicate gallery rows are scored once, so they tie
exactly. Ranks are exact for these float32 values without an argsort.
Each block of rows is ranked in three passes (`keras_cmr.evaluation.ranking_kernels`): one
compiled pass maps each score to an int32 of the same order with the relevance flag as its
lowest bit (|cos| < 2 leaves a bit free; -0.0 and +0.0 map alike), numpy sorts the rows by
value only, and a second compiled pass reads the relevant items' ranks off the flags. Where a
relevant item ties with an irrelevant one, that pass re-ranks the tied items by gallery index,
scanning the row's scores for the tied value (or re-sorting the row with the index in an int64
key when it has many such ties), and sums P@rank per row for plain mAP. The other metrics are
read off the ranks with numpy.

Cost: O(Nq * Ng * d) for the matmuls plus O(Nq * Ng * log Ng) for the row sorts and two linear
passes per score, in one thread per CPU (BLAS and the kernels release the GIL); memory
O(chunk_size * Ng + (Nq + Ng) * d + Nq), never Nq * Ng. The kernels compile on their first call
in a process: about 3 s (class ids) or 1.8 s more (multi-hot) without numba's on-disk cache,
0.3 s with it (our measurement, benchmarks/README.md).
"""

import contextlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from keras_cmr.evaluation.ranking_kernels import order_keys, relevant_ranks
from keras_cmr.utils.threads import CPU_WORKERS, one_blas_thread

# The automatic chunk size keeps a chunk's float32 scores under this many bytes.
_CHUNK_BYTES = 128 * 2**20
# Scores ranked per block: the key, sort and rank arrays of a block stay in cache.
_BLOCK_SCORES = 2**17
# Threads that rank blocks in parallel: the CPUs this process may run on.
_WORKERS = CPU_WORKERS
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


def _multi_hot_relevance(query_labels, gallery_labels, out=None):
    """(queries, gallery) bool: at least one shared label of 0/1 multi-hot rows."""
    return np.greater(query_labels @ gallery_labels.T, 0.5, out=out)


def _block_ranks(scores, query_codes, gallery_codes, relevant, keys, hits):
    """Ranks of the relevant items in each row of a block of float32 `scores`.

    Relevance: `query_codes[row] == gallery_codes[column]` (int class codes; `relevant` None),
    or the bool `relevant` (codes None). Returns `counts` (relevant items per row), per row the
    sum of P@rank over its relevant items, and, for every relevant pair in row-major order, its
    `rows` index, its 1-based `ranks` (descending within a row) and `k` (how many relevant items
    rank at or above it), so P@rank = k / rank.
    `keys`: an int32 work array of the block's shape; `hits`: three int64 work arrays with one
    item more than the block.
    """
    bits = scores.view(np.int32)
    n_relevant = order_keys(bits, query_codes, gallery_codes, relevant, keys)
    # numpy's sort (AVX-512 on our CPU): 0.26 ms per block of 2^17 keys, where numba's sort
    # in a kernel took 6.0 ms (our measurement).
    keys.sort(axis=1)
    counts = np.empty(len(scores), np.int64)
    precision_sums = np.empty(len(scores))
    rows, ranks, k = (hit[: n_relevant + 1] for hit in hits)
    relevant_ranks(keys, bits, query_codes, gallery_codes, relevant, counts, precision_sums, rows,
                   ranks, k)
    return counts, precision_sums, rows[:n_relevant], ranks[:n_relevant], k[:n_relevant]


def _query_values(counts, precision_sums, rows, ranks, k, plan):
    """Per-query values of every planned metric, as {key: array}.

    `precision_sums`: per row, the sum of P@rank = k / rank over its relevant items (summed by
    the rank pass in the order `np.bincount` would, so plain mAP needs no per-hit arrays here).
    """
    n_rows = len(counts)
    precision = None
    if any(kind in ("precision_at_recall", "map@r") or (kind == "map" and cutoff is not None)
           for kind, cutoff in plan.values()):
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
            values[key] = precision_sums / safe_counts
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
    keys = np.empty((block, n_cols), np.int32)
    hits = [np.empty(block * n_cols + 1, np.int64) for _ in range(3)]
    multi_hot = gallery_labels.ndim == 2
    relevant_buffer = np.empty((block, n_cols), bool) if multi_hot else None
    for start in range(0, n_rows, block):
        rows = slice(start, min(start + block, n_rows))
        if multi_hot:
            relevant = _multi_hot_relevance(query_labels[rows], gallery_labels,
                                            out=relevant_buffer[: rows.stop - start])
            codes = (None, None)
        else:
            relevant, codes = None, (query_labels[rows], gallery_labels)
        ranked = _block_ranks(scores[rows], *codes, relevant, keys[: rows.stop - start], hits)
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
    # Each worker scores its share of a chunk's queries in one BLAS thread and ranks it. With
    # the matmul in BLAS' two threads, OpenBLAS' idle thread spun for about 0.1 s after each
    # matmul on a core the ranking threads needed; per-worker matmuls (each reads the gallery
    # once) were about 20% faster at 10k and 40k (our measurement, benchmarks/README.md,
    # evaluation, "third session").
    workers = min(_WORKERS, chunk_size) if chunk_size * n_gallery > _BLOCK_SCORES else 1
    small_product = chunk_size * len(unique_rows) * queries.shape[1] < _ONE_THREAD_MULTIPLY_ADDS

    def score_and_rank(rows, scores, unique_scores):
        if inverse is None:
            np.matmul(queries[rows], unique_rows.T, out=scores)
        else:
            np.matmul(queries[rows], unique_rows.T, out=unique_scores)
            np.take(unique_scores, inverse, axis=1, out=scores)
        _rank_rows(scores, query_labels[rows], gallery_labels, plan,
                   {key: array[rows] for key, array in values.items()})

    with ThreadPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool, \
            one_blas_thread(workers > 1 or small_product):
        for start in range(0, n_queries, chunk_size):
            # Contiguous shares of the chunk's rows; BLAS, numpy's sort and the kernels
            # release the GIL, so the shares run in parallel.
            bounds = np.linspace(0, min(chunk_size, n_queries - start), workers + 1).astype(int)
            jobs = [(slice(start + a, start + b), buffer[a:b],
                     None if inverse is None else unique_buffer[a:b])
                    for a, b in zip(bounds[:-1], bounds[1:])]
            list((pool.map if pool else map)(score_and_rank, *zip(*jobs)))
    return {key: float(array.mean()) for key, array in values.items()}
