"""Top-k search over a gallery: exact brute force on `keras.ops`, or faiss (exact or not).

Both rank a gallery by similarity to each query, highest first, and return the k best as
(scores, ids). With `metric="cosine"` (the default, the geometry of `keras_cmr.evaluation`)
queries and gallery rows are L2-normalised first (a zero row stays zero); with `metric="dot"`
they are used as given. Equal scores are ordered by the order in which items were added.

`GalleryIndex` is the base a new kind of index builds on: it keeps the ids, checks queries,
and saves; a subclass writes `add`, `_search(queries, k, verbose)`, `_save_gallery(folder)`
and the classmethod `_load(folder, config, ids, on_disk)`, and sets `kind`.
"""

import os

import keras
import numpy as np
from keras import ops

from keras_cmr.retrieval.approximate import (apply_search_options, faiss_options,
                                             new_faiss_index, npy_training_sample,
                                             training_sample)
from keras_cmr.retrieval.host_top_k import backend_has_accelerator, host_search
from keras_cmr.retrieval.storage import NpyRows, save_index_folder, write_npy_chunks
from keras_cmr.utils.arrays import unit_rows
from keras_cmr.utils.checks import check_finite_rows, check_positive_int, to_numpy

METRICS = ("cosine", "dot")
COMPUTES = ("auto", "host", "keras")
# Scores computed per matmul: a chunk's float32 scores stay under 128 MB.
_CHUNK_SCORES = 2**25
# Gallery rows converted to a backend tensor at a time.
GALLERY_CHUNK_ROWS = 2**16
# Prepared rows of `.npy` galleries kept in memory between searches, by default.
CACHE_BYTES = 2**30
# Above this many query x gallery scores, `verbose="auto"` shows a progress bar.
_PROGRESS_SCORES = 2**32


def check_rows(array, name, dim=None):
    """A validated non-empty 2-D real array (not copied when it already is numpy)."""
    array = to_numpy(array, name)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"`{name}` must be a non-empty 2-D (rows, dims) array, got shape "
                         f"{array.shape}.")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"`{name}` must hold real numbers, got dtype {array.dtype}.")
    if dim is not None and array.shape[1] != dim:
        raise ValueError(f"`{name}` has {array.shape[1]} dims, the index holds {dim}-d "
                         "embeddings.")
    return array


def merge_top_k(scores, positions, k):
    """Per row, the k best of (scores, positions): highest score first, then lowest position."""
    order = np.lexsort((positions, -scores), axis=-1)[:, :k]
    return (np.take_along_axis(scores, order, axis=1),
            np.take_along_axis(positions, order, axis=1))


class GalleryIndex:
    """What every index shares: the gallery's ids, argument checks and the saved layout."""

    kind = None

    def __init__(self, metric="cosine"):
        if metric not in METRICS:
            raise ValueError(f"`metric` must be one of {METRICS}, got {metric!r}.")
        self.metric = metric
        self.dim = None
        self._ids = []

    @property
    def ntotal(self):
        """The number of gallery items."""
        return sum(len(ids) for ids in self._ids)

    @property
    def ids(self):
        """The ids of the gallery items, in the order they were added (int64)."""
        return np.concatenate(self._ids) if self._ids else np.zeros(0, np.int64)

    def _new_ids(self, count, ids):
        start = self.ntotal
        if ids is None:
            return np.arange(start, start + count, dtype=np.int64)
        ids = np.asarray(ids)
        if ids.shape != (count,) or ids.dtype.kind not in "iu":
            raise ValueError(f"`ids` must be {count} integers (one per row), got shape "
                             f"{ids.shape} and dtype {ids.dtype}.")
        return ids.astype(np.int64)

    def _prepared(self, rows, name, first_row=0, owned=False):
        """float32 rows checked for NaN/inf, unit-norm for "cosine" (in place when `owned`:
        a chunk just read from disk)."""
        rows = check_finite_rows(rows, name, first_row)
        return unit_rows(rows, copy=not owned) if self.metric == "cosine" else rows

    def _check_search(self, queries, k):
        k = check_positive_int(k, "`k`")
        if self.ntotal == 0:
            raise ValueError("the index is empty: add gallery embeddings before searching.")
        return self._prepared(check_rows(queries, "queries", self.dim), "queries"), k

    def search(self, queries, k, verbose="auto"):
        """The k best gallery items of each query.

        Args:
            queries: (n, dim) array-like.
            k: items per query; when the gallery holds fewer, all of them (k = ntotal).
            verbose: show a progress bar: True, False, or "auto" (for long searches).

        Returns:
            (scores, ids): float32 (n, k) similarities, best first, and int64 (n, k) ids.
        """
        queries, k = self._check_search(queries, k)
        scores, positions = self._search(queries, min(k, self.ntotal), verbose)
        return scores, self.ids[positions]

    def search_positions(self, queries, k, verbose="auto"):
        """As `search`, with the items' positions in the gallery (0 .. ntotal-1) as ids."""
        queries, k = self._check_search(queries, k)
        return self._search(queries, min(k, self.ntotal), verbose)

    def _extra_config(self):
        """What a kind of index adds to index.json (e.g. faiss' options)."""
        return {}

    def save(self, directory):
        """Writes the index to the folder `directory` (replaced whole, never half-written).

        The folder holds `index.json` (kind, metric, dim, size), `ids.npy` and the gallery
        (`embeddings.npy` for brute force, `index.faiss` for faiss).
        """
        config = {"kind": self.kind, "metric": self.metric, "dim": self.dim,
                  "ntotal": self.ntotal, **self._extra_config()}
        save_index_folder(directory, config, self.ids, self._save_gallery)


class BruteForceIndex(GalleryIndex):
    """Exact top-k search over gallery chunks, on the host's BLAS or on the Keras backend.

    "host": numpy's BLAS matmul + threshold pruning (`keras_cmr.retrieval.host_top_k`);
    "keras": `keras.ops.matmul` + `keras.ops.top_k` per chunk, the k best merged on the host.
    "auto" takes the host on a CPU-only backend (faiss' speed there, the backends' CPU matmuls
    0.3-0.55x: our measurement, benchmarks/README.md) and the backend on a GPU/TPU. Equal
    scores rank the earlier-added item first (except at the k-th place inside one chunk with
    "keras" on PyTorch, whose `topk` is not stable). Cost O(n_queries * n_gallery * dim);
    memory O(chunk scores + gallery chunk + n * k).

    Example:

    ```python
    index = BruteForceIndex()
    index.add(text_embeddings)                  # or index.add_npy("gallery.npy")
    scores, ids = index.search(image_embeddings, k=10)
    index.save("text_index")
    index = load_index("text_index")            # gallery left on disk
    ```

    Args:
        metric: "cosine" (rows L2-normalised) or "dot".
        gallery_chunk_rows: gallery rows read (from `.npy` files) or converted to a backend
            tensor at a time.
        compute: "auto", "host" (numpy's BLAS) or "keras" (the Keras backend's device).
        cache_bytes: `.npy` galleries (`add_npy`) of at most this many float32 bytes are kept
            in memory, checked and normalised, after the first search (dropped on add); larger
            ones are read a chunk at a time at each search.
    """

    kind = "brute_force"

    def __init__(self, metric="cosine", gallery_chunk_rows=GALLERY_CHUNK_ROWS, compute="auto",
                 cache_bytes=CACHE_BYTES):
        super().__init__(metric)
        self.gallery_chunk_rows = check_positive_int(gallery_chunk_rows, "`gallery_chunk_rows`")
        if compute not in COMPUTES:
            raise ValueError(f"`compute` must be one of {COMPUTES}, got {compute!r}.")
        if not isinstance(cache_bytes, (int, np.integer)) or cache_bytes < 0:
            raise ValueError(f"`cache_bytes` must be an integer >= 0, got {cache_bytes!r}.")
        self.compute = compute
        self.cache_bytes = int(cache_bytes)
        self._cached_chunks = None  # [(first position, prepared rows)] once read whole
        # (array, needs preparing, source): copies added in memory are checked and
        # normalised once, on add; `.npy` files left on disk chunk by chunk as they are read.
        self._parts = []

    def add(self, embeddings, ids=None):
        """Adds gallery rows (copied, checked for NaN/inf, normalised for "cosine")."""
        rows = check_rows(embeddings, "embeddings", self.dim)
        ids = self._new_ids(len(rows), ids)
        rows = self._prepared(rows, "embeddings")  # a copy for "cosine"; copied for "dot"
        self._append(rows if self.metric == "cosine" else np.array(rows), ids,
                     needs_preparing=False)

    def add_npy(self, path, ids=None):
        """Adds the rows of a 2-D `.npy` file, left on disk: each search reads it chunk by chunk.

        Only a chunk of rows is ever in memory. Rows are checked for NaN/inf as each chunk is
        read, so a bad row fails the search that reads it, naming the file and the row.
        """
        rows = NpyRows(path)
        if self.dim is not None and rows.shape[1] != self.dim:
            raise ValueError(f"{path!r} holds {rows.shape[1]}-d rows, the index holds "
                             f"{self.dim}-d embeddings.")
        self._append(rows, self._new_ids(len(rows), ids), needs_preparing=True, source=path)

    def _append(self, rows, ids, needs_preparing, source="embeddings"):
        self.dim = rows.shape[1]
        self._parts.append((rows, needs_preparing, str(source)))
        self._ids.append(ids)
        self._cached_chunks = None

    def _gallery_chunks(self):
        """(first position, float32 rows ready to score) over the whole gallery."""
        if self._cached_chunks is not None:
            yield from self._cached_chunks
            return
        read = sum(len(rows) for rows, needs_preparing, _ in self._parts if needs_preparing)
        kept = [] if read * self.dim * 4 <= self.cache_bytes else None
        position = 0
        for rows, needs_preparing, source in self._parts:
            for start in range(0, len(rows), self.gallery_chunk_rows):
                chunk = rows[start:start + self.gallery_chunk_rows]
                if needs_preparing:
                    chunk = self._prepared(chunk, source, first_row=start, owned=True)
                chunk = (position + start, np.ascontiguousarray(chunk, dtype=np.float32))
                if kept is not None:
                    kept.append(chunk)
                yield chunk
            position += len(rows)
        self._cached_chunks = kept  # reached only once the whole gallery was read

    def _progress(self, verbose, n_queries, steps):
        show = verbose if verbose != "auto" else n_queries * self.ntotal >= _PROGRESS_SCORES
        return keras.utils.Progbar(steps, unit_name="chunk") if show else None

    def _search(self, queries, k, verbose):
        if self.compute == "host" or self.compute == "auto" and not backend_has_accelerator():
            steps = -(-self.ntotal // min(self.gallery_chunk_rows, self.ntotal))
            return host_search(queries, k, self._gallery_chunks(),
                               self._progress(verbose, len(queries), steps))
        return self._search_keras(queries, k, verbose)

    def _search_keras(self, queries, k, verbose):
        n_queries, n_gallery = len(queries), self.ntotal
        chunk_rows = min(self.gallery_chunk_rows, n_gallery)
        query_rows = max(1, min(n_queries, _CHUNK_SCORES // chunk_rows))
        query_chunks = [ops.convert_to_tensor(queries[start:start + query_rows])
                        for start in range(0, n_queries, query_rows)]
        best_scores = np.full((n_queries, 0), -np.inf, np.float32)
        best_positions = np.zeros((n_queries, 0), np.int64)
        steps = -(-n_gallery // chunk_rows) * len(query_chunks)
        progress = self._progress(verbose, n_queries, steps)
        for first, rows in self._gallery_chunks():
            gallery = ops.transpose(ops.convert_to_tensor(rows))
            chunk_k = min(k, len(rows))
            found_scores, found_positions = [], []
            for query_chunk in query_chunks:
                values, columns = ops.top_k(ops.matmul(query_chunk, gallery), chunk_k)
                found_scores.append(ops.convert_to_numpy(values))
                found_positions.append(ops.convert_to_numpy(columns).astype(np.int64) + first)
                if progress is not None:
                    progress.add(1)
            best_scores, best_positions = merge_top_k(
                np.concatenate([best_scores, np.concatenate(found_scores)], axis=1),
                np.concatenate([best_positions, np.concatenate(found_positions)], axis=1), k)
        return best_scores, best_positions

    def _save_gallery(self, directory):
        write_npy_chunks(os.path.join(directory, "embeddings.npy"),
                         (rows for _, rows in self._gallery_chunks()), (self.ntotal, self.dim))

    @classmethod
    def _load(cls, directory, config, ids, on_disk):
        index = cls(metric=config["metric"])
        path = os.path.join(directory, "embeddings.npy")
        if on_disk:
            index.add_npy(path, ids=ids)
        else:
            # Saved rows are already normalised: keep them as stored.
            rows = np.load(path, allow_pickle=False)
            index._append(check_finite_rows(check_rows(rows, path), path), ids,
                          needs_preparing=False)
        return index


def import_faiss():
    """The faiss module, or an ImportError saying how to install it."""
    try:
        import faiss
    except ImportError:
        raise ImportError("FaissIndex needs faiss: `pip install faiss-cpu` (or faiss-gpu), "
                          "or use BruteForceIndex, which needs nothing more.") from None
    return faiss


class FaissIndex(GalleryIndex):
    """Top-k search with faiss (optional: `pip install faiss-cpu`), exact or approximate.

    `index_type="flat"` (`IndexFlatIP`) gives the results of `BruteForceIndex` (up to float
    rounding in ties). "ivf", "ivf_sq8" and "hnsw" are approximate
    (`keras_cmr.retrieval.approximate` defines them): faster on large galleries, at a recall below 1 that `evaluate_index(...,
    exact=...)` measures. An IVF index trains its cells on the first `add` (or `add_npy`), on
    `train_size` rows sampled evenly from them. The gallery lives in faiss' memory.

    Args:
        metric: "cosine" (rows L2-normalised) or "dot".
        index_type: "flat", "ivf", "ivf_sq8" (IVF, 8 bits a dimension) or "hnsw".
        nlist, nprobe, train_size: IVF cells, cells searched per query, training rows (default
            64 * nlist).
        hnsw_m, ef_construction, ef_search: HNSW links per row, beam while building, beam
            while searching.

    `nprobe` and `ef_search` may be changed after building or loading (`set_search`).
    """

    kind = "faiss"

    def __init__(self, metric="cosine", index_type="flat", nlist=1024, nprobe=16,
                 train_size=None, hnsw_m=32, ef_construction=200, ef_search=128):
        super().__init__(metric)
        self._faiss = import_faiss()
        self.options = faiss_options(index_type, nlist=nlist, nprobe=nprobe, hnsw_m=hnsw_m,
                                     ef_construction=ef_construction, ef_search=ef_search,
                                     train_size=train_size)
        self._index = None

    def set_search(self, nprobe=None, ef_search=None):
        """Changes the search-time knobs of an "ivf" (`nprobe`) or "hnsw" (`ef_search`) index."""
        changes = {"nprobe": nprobe, "ef_search": ef_search}
        for name, value in changes.items():
            if value is None:
                continue
            if name not in self.options:
                raise ValueError(f"`{name}` applies to another index type, not to "
                                 f"{self.options['index_type']!r}.")
            self.options = faiss_options(**{**self.options, name: value})
        if self._index is not None:
            apply_search_options(self._index, self.options)

    def _build(self, dim, sample):
        """Creates the faiss index; an IVF index trains on `sample` (raw rows; else None)."""
        self._index = new_faiss_index(self._faiss, dim, self.options)
        self.dim = dim
        if "nlist" in self.options:  # IVF: trains its cells
            sample = self._prepared(sample, "embeddings")
            if len(sample) < self.options["nlist"]:
                self._index, self.dim = None, None
                raise ValueError(f"an IVF index of nlist={self.options['nlist']} cells trains "
                                 f"on at least as many rows; got {len(sample)}: add more rows "
                                 "first or lower nlist.")
            self._index.train(np.ascontiguousarray(sample))
        apply_search_options(self._index, self.options)

    def add(self, embeddings, ids=None, chunk_rows=GALLERY_CHUNK_ROWS):
        """Adds gallery rows (checked for NaN/inf, normalised for "cosine"), chunk by chunk."""
        rows = check_rows(embeddings, "embeddings", self.dim)
        ids = self._new_ids(len(rows), ids)
        if self._index is None:
            size = self.options.get("train_size")
            self._build(rows.shape[1], size and training_sample(rows, size))
        for start in range(0, len(rows), chunk_rows):
            chunk = self._prepared(rows[start:start + chunk_rows], "embeddings", start)
            self._index.add(np.ascontiguousarray(chunk))
        self._ids.append(ids)

    def add_npy(self, path, ids=None, chunk_rows=GALLERY_CHUNK_ROWS):
        """Adds the rows of a 2-D `.npy` file, read chunk by chunk into faiss (an IVF index
        first trains on blocks read from across the file)."""
        rows = NpyRows(path)
        ids = self._new_ids(len(rows), ids)
        if self._index is None:
            size = self.options.get("train_size")
            self._build(rows.shape[1], size and npy_training_sample(rows, size))
        for start in range(0, len(rows), chunk_rows):
            self.add(rows[start:start + chunk_rows], ids[start:start + chunk_rows])

    def _search(self, queries, k, verbose):
        del verbose  # one faiss call
        scores, positions = self._index.search(np.ascontiguousarray(queries), k)
        return scores.astype(np.float32), positions.astype(np.int64)

    def _extra_config(self):
        return {"options": self.options}

    def _save_gallery(self, directory):
        self._faiss.write_index(self._index, os.path.join(directory, "index.faiss"))

    @classmethod
    def _load(cls, directory, config, ids, on_disk):
        options = dict(config.get("options", {"index_type": "flat"}))
        index = cls(metric=config["metric"], **options)
        faiss = index._faiss
        flags = faiss.IO_FLAG_MMAP if on_disk else 0
        index._index = faiss.read_index(os.path.join(directory, "index.faiss"), flags)
        apply_search_options(index._index, index.options)
        index.dim = index._index.d
        index._ids.append(ids)
        return index
