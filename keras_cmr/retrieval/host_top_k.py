"""Exact top-k of query x gallery inner products on the host: numpy's BLAS + threshold pruning.

`HostTopK` keeps, for a block of queries, the k best (score, position) so far and folds in one
gallery chunk at a time: a BLAS matmul scores the chunk, and only the scores that can still
enter the top k are gathered and merged. A score can enter only if it is strictly above the
row's current k-th best (earlier positions win ties) and not below the k-th best of its own
chunk; after the first chunk that keeps a few candidates per row out of thousands, so the merge
costs little next to the matmul. The result is exact, ties ordered by position. `host_search`
splits the query blocks over one thread per CPU, each with one BLAS thread.

This is the CPU path of `BruteForceIndex` (our measurement, benchmarks/README.md "Second round":
the backends' CPU matmuls plus `top_k` over each chunk ran at 0.28-0.55x faiss' flat index,
numpy's BLAS at faiss' own speed).
"""

import contextlib
import itertools
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np

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


def merge_candidates(best_scores, best_positions, rows, scores, positions):
    """Per row, the k best of its current best (n, k) and the candidates (rows, scores, positions).

    Highest score first, then lowest position. Returns new (n, k) scores and positions.
    """
    n, k = best_scores.shape
    all_rows = np.concatenate([np.repeat(np.arange(n), k), rows])
    all_scores = np.concatenate([best_scores.ravel(), scores])
    all_positions = np.concatenate([best_positions.ravel(), positions])
    order = np.lexsort((all_positions, -all_scores, all_rows))
    # Every row holds at least its k slots, so its first k sorted entries are its k best.
    starts = np.concatenate([[0], np.cumsum(np.bincount(all_rows, minlength=n))[:-1]])
    chosen = order[starts[:, None] + np.arange(k)]
    return all_scores[chosen], all_positions[chosen]


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

    def add_chunk(self, rows, first_position):
        """Folds in gallery `rows` (float32 (m, dim)), whose first row has `first_position`."""
        chunk = self.queries @ rows.T
        keep = chunk > self.scores[:, -1:]
        if len(rows) > self.k and self.positions[:, -1].max() == _EMPTY:
            # Until every row holds k items, prune with the k-th best of the chunk itself:
            # nothing below it can enter the top k.
            chunk_kth = np.partition(chunk, len(rows) - self.k, axis=1)[:, -self.k:].min(axis=1)
            keep &= chunk >= chunk_kth[:, None]
        rows_found, columns = np.nonzero(keep)
        if len(rows_found):
            self.scores, self.positions = merge_candidates(
                self.scores, self.positions, rows_found, chunk[rows_found, columns],
                columns.astype(np.int64) + first_position)

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
    with (ThreadPoolExecutor(workers) if workers > 1 else contextlib.nullcontext()) as pool, \
            one_blas_thread(workers > 1):
        for first, rows in gallery_chunks:
            if pool is None:
                _fold_in(blocks, first, rows)
            else:  # numpy releases the GIL in the matmul and the pruning
                list(pool.map(_fold_in, groups, itertools.repeat(first),
                              itertools.repeat(rows)))
            if progress is not None:
                progress.add(1)
    results = [block.result() for block in blocks]
    return (np.concatenate([scores for scores, _ in results]),
            np.concatenate([positions for _, positions in results]))


def _fold_in(blocks, first, rows):
    """Adds gallery `rows` (first position `first`) to each block, HOST_GALLERY_ROWS at a time."""
    for start in range(0, len(rows), HOST_GALLERY_ROWS):
        for block in blocks:
            block.add_chunk(rows[start:start + HOST_GALLERY_ROWS], first + start)


def backend_has_accelerator():
    """Whether the Keras backend computes on a GPU/TPU (else on the CPU)."""
    if keras.backend.backend() == "torch":
        import torch

        return torch.cuda.is_available() or torch.backends.mps.is_available()
    return any(not device.startswith("cpu") for device in keras.distribution.list_devices())
