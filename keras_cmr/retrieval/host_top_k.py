"""Exact top-k of query x gallery inner products on the host: numpy's BLAS + one compiled pass.

`HostTopK` keeps, for a block of queries, the k best (score, position) so far and folds in one
gallery chunk at a time: a BLAS matmul scores the chunk into a reused buffer, and
`fold_in_scores` (numba) reads each row once, inserting a score only when it is strictly above
the row's current k-th best (earlier positions win ties). After the first chunk few scores pass
that test, so the pass costs little next to the matmul. The result is exact, ties ordered by
position. `host_search` splits the query blocks over one thread per CPU, each with one BLAS
thread; the kernel releases the GIL.

This is the CPU path of `BruteForceIndex` (our measurement, benchmarks/README.md: the backends'
CPU matmuls plus `top_k` over each chunk ran at 0.28-0.55x faiss' flat index; numpy's pruning
(compare, nonzero, gather, lexsort merge) left the matmul a third of the time, 0.60-0.64x faiss
on a quiet machine).
"""

import contextlib
import itertools
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np

from keras_cmr.utils.jit import compiled_on_first_call
from keras_cmr.utils.threads import CPU_WORKERS, one_blas_thread

# The host path scores blocks of at most this many queries x gallery rows (32 MB of float32
# scores, cache-friendly; our measurement, benchmarks/README.md "Second round").
HOST_QUERY_ROWS = 2048
HOST_GALLERY_ROWS = 4096
# Query blocks are split over this many threads, each with one BLAS thread, when every thread
# gets at least HOST_MIN_WORKER_QUERIES queries (else one thread, BLAS' own threads). In one
# thread the pruning ran between two-thread matmuls, one core idle; in parallel blocks both
# cores matmul and prune, and no BLAS thread waits for a descheduled partner (our measurement,
# benchmarks/README.md "Second round").
HOST_WORKERS = CPU_WORKERS
HOST_MIN_WORKER_QUERIES = 256
# Sentinel position of an empty slot: sorts after every real position.
_EMPTY = np.iinfo(np.int64).max


@compiled_on_first_call
def fold_in_scores(scores, first_position, best_scores, best_positions):
    """Folds `scores` (n, m), gallery positions `first_position` + column, into each row's k
    best (`best_scores`, `best_positions`: (n, k), highest score first, equal scores by lower
    position), in place. A score enters only when strictly above the row's k-th best: the
    positions already held are all lower, so they win every tie."""
    n, m = scores.shape
    k = best_scores.shape[1]
    for row in range(n):
        threshold = best_scores[row, k - 1]
        for column in range(m):
            score = scores[row, column]
            if score > threshold:
                slot = k - 1
                while slot > 0 and best_scores[row, slot - 1] < score:
                    best_scores[row, slot] = best_scores[row, slot - 1]
                    best_positions[row, slot] = best_positions[row, slot - 1]
                    slot -= 1
                best_scores[row, slot] = score
                best_positions[row, slot] = first_position + column
                threshold = best_scores[row, k - 1]


class HostTopK:
    """The running exact top-k of `queries` (n, dim float32) over gallery chunks added in order.

    Args:
        queries: float32 (n, dim) array, C-contiguous.
        k: items kept per query.
    """

    def __init__(self, queries, k):
        self.queries = queries
        self.k = k
        self.scores = np.full((len(queries), k), -np.inf, np.float32)
        self.positions = np.full((len(queries), k), _EMPTY, np.int64)

    def add_chunk(self, rows, first_position, buffer=None):
        """Folds in gallery `rows` (float32 (m, dim)), whose first row has `first_position`.

        `buffer`: a 1-D float32 work array of at least n * m items for the scores (a fresh
        32 MB array per chunk page-faults), else one is made.
        """
        n, m = len(self.queries), len(rows)
        if buffer is None or buffer.size < n * m:
            buffer = np.empty(n * m, np.float32)
        scores = buffer[:n * m].reshape(n, m)
        np.matmul(self.queries, rows.T, out=scores)
        fold_in_scores(scores, first_position, self.scores, self.positions)

    def result(self):
        """(scores, positions): float32 and int64 (n, k), best first."""
        return self.scores, self.positions


def host_search(queries, k, gallery_chunks, progress=None):
    """Exact (scores, positions) (n, k) of `queries` over `gallery_chunks`.

    Args:
        queries: float32 (n, dim) array.
        k: items per query, at most the gallery's size.
        gallery_chunks: iterable of (first position, float32 (m, dim) rows), in order.
        progress: a `keras.utils.Progbar` advanced once per chunk, or None.
    """
    workers = max(1, min(HOST_WORKERS, len(queries) // HOST_MIN_WORKER_QUERIES))
    # Blocks of at most HOST_QUERY_ROWS queries, as many per worker.
    count = workers * -(-len(queries) // (workers * HOST_QUERY_ROWS))
    size = -(-len(queries) // count)
    blocks = [HostTopK(queries[start:start + size], k)
              for start in range(0, len(queries), size)]
    groups = [blocks[worker::workers] for worker in range(workers)]
    # One score buffer per worker for the whole search (pages are touched only as used).
    buffers = [np.empty(len(group[0].queries) * HOST_GALLERY_ROWS, np.float32)
               for group in groups]
    with (ThreadPoolExecutor(workers) if workers > 1 else contextlib.nullcontext()) as pool, \
            one_blas_thread(workers > 1):
        for first, rows in gallery_chunks:
            if pool is None:
                _fold_in(blocks, first, rows, buffers[0])
            else:  # the matmul and the compiled pass release the GIL
                list(pool.map(_fold_in, groups, itertools.repeat(first),
                              itertools.repeat(rows), buffers))
            if progress is not None:
                progress.add(1)
    results = [block.result() for block in blocks]
    return (np.concatenate([scores for scores, _ in results]),
            np.concatenate([positions for _, positions in results]))


def _fold_in(blocks, first, rows, buffer):
    """Adds gallery `rows` (first position `first`) to each block, HOST_GALLERY_ROWS at a time,
    scoring into `buffer` (see `HostTopK.add_chunk`)."""
    for start in range(0, len(rows), HOST_GALLERY_ROWS):
        chunk = rows[start:start + HOST_GALLERY_ROWS]
        for block in blocks:
            block.add_chunk(chunk, first + start, buffer)


def backend_has_accelerator():
    """Whether the Keras backend computes on a GPU/TPU (else on the CPU)."""
    if keras.backend.backend() == "torch":
        import torch

        return torch.cuda.is_available() or torch.backends.mps.is_available()
    return any(not device.startswith("cpu") for device in keras.distribution.list_devices())
