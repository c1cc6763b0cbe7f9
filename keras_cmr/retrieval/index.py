"""Top-k indexes over a gallery of embeddings: exact brute force on `keras.ops`, or faiss.

Both rank a gallery by similarity to each query, highest first, and return the k best as
(scores, ids). With `metric="cosine"` (the default, the geometry of `keras_cmr.evaluation`)
queries and gallery rows are L2-normalised first (a zero row stays zero); with `metric="dot"`
they are used as given. Equal scores are ordered by the order in which items were added.

The gallery is stored as numpy arrays, or left on disk in `.npy` files (`add_npy`, or
`load_index(..., on_disk=True)`) that each search reads a chunk at a time: memory stays bounded
by a chunk, whatever the gallery's size.
"""

import json
import numbers
import os
import shutil
import tempfile

import keras
import numpy as np
from keras import ops

from keras_cmr import saving

METRICS = ("cosine", "dot")
FORMAT_VERSION = 1
# Scores computed per matmul: a chunk's float32 scores stay under 128 MB.
_CHUNK_SCORES = 2**25
# Gallery rows converted to a backend tensor at a time.
_GALLERY_CHUNK_ROWS = 2**16
# Above this many query x gallery scores, `verbose="auto"` shows a progress bar.
_PROGRESS_SCORES = 2**32


class NpyRows:
    """The rows of a 2-D `.npy` file, read from disk on slicing (never mapped or read whole)."""

    def __init__(self, path):
        self.path = str(path)
        try:
            with open(self.path, "rb") as stream:
                version = np.lib.format.read_magic(stream)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran_order, dtype = read_header(stream)
                self.offset = stream.tell()
        except FileNotFoundError:
            raise FileNotFoundError(f"no .npy file at {self.path!r}.") from None
        except (ValueError, OSError) as error:
            raise ValueError(f"{self.path!r} is not a readable .npy array: {error}") from error
        if len(shape) != 2 or 0 in shape or fortran_order or dtype.kind not in "biuf" \
                or dtype.hasobject:
            raise ValueError(f"{self.path!r} must hold a non-empty 2-D C-order array of real "
                             f"numbers, got shape {shape}, dtype {dtype}"
                             f"{', Fortran order' if fortran_order else ''}.")
        expected = self.offset + int(np.prod(shape)) * dtype.itemsize
        if os.path.getsize(self.path) < expected:
            raise ValueError(f"{self.path!r} is truncated: {os.path.getsize(self.path)} bytes, "
                             f"its header promises {expected}.")
        self.shape, self.dtype = tuple(shape), dtype

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, rows):
        start, stop, step = rows.indices(len(self))
        if step != 1:
            raise ValueError("NpyRows reads contiguous row ranges only.")
        count = max(0, stop - start) * self.shape[1]
        with open(self.path, "rb") as stream:
            stream.seek(self.offset + start * self.shape[1] * self.dtype.itemsize)
            data = np.fromfile(stream, self.dtype, count)
        return data.reshape(-1, self.shape[1])


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}.")
    return int(value)


def _float_rows(array, name, dim=None):
    """A validated 2-D real array (not copied when it already is float32)."""
    array = array if isinstance(array, np.ndarray) else np.asarray(ops.convert_to_numpy(array))
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"`{name}` must be a non-empty 2-D (rows, dims) array, got shape "
                         f"{array.shape}.")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"`{name}` must hold real numbers, got dtype {array.dtype}.")
    if dim is not None and array.shape[1] != dim:
        raise ValueError(f"`{name}` has {array.shape[1]} dims, the index holds {dim}-d "
                         "embeddings.")
    return array


def _finite_float32(rows, name, first_row=0):
    rows = np.asarray(rows, dtype=np.float32)
    finite = np.isfinite(rows).all(axis=1)
    if not finite.all():
        raise ValueError(f"`{name}` holds NaN or inf, first in row "
                         f"{first_row + int(np.argmin(finite))}.")
    return rows


def _normalized(rows):
    """float32 rows divided by their L2 norm; a zero row stays zero.

    Norms are taken in float32 (fast); rows whose squares overflow or underflow there are
    redone in float64.
    """
    rows = np.asarray(rows, dtype=np.float32)
    norm = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    extreme = ~np.isfinite(norm) | (norm < 1e-18)
    out = rows / np.where(extreme | (norm == 0), 1, norm)[:, None]
    if extreme.any():
        wide = rows[extreme].astype(np.float64)
        wide_norm = np.sqrt(np.einsum("ij,ij->i", wide, wide))
        out[extreme] = wide / np.where(wide_norm > 0, wide_norm, 1)[:, None]
    return out


def _merge_top_k(scores, positions, k):
    """Per row, the k best of (scores, positions): highest score first, then lowest position."""
    order = np.lexsort((positions, -scores), axis=-1)[:, :k]
    return (np.take_along_axis(scores, order, axis=1),
            np.take_along_axis(positions, order, axis=1))


class _GalleryIndex:
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

    def _check_search(self, queries, k):
        k = _positive_int(k, "k")
        if self.ntotal == 0:
            raise ValueError("the index is empty: add gallery embeddings before searching.")
        queries = _finite_float32(_float_rows(queries, "queries", self.dim), "queries")
        return (_normalized(queries) if self.metric == "cosine" else queries), k

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

    def _config(self):
        return {"kind": self.kind, "metric": self.metric, "dim": self.dim,
                "ntotal": self.ntotal, "format_version": FORMAT_VERSION}

    def save(self, directory):
        """Writes the index to the folder `directory` (replaced whole, never half-written).

        The folder holds `index.json` (kind, metric, dim, size), `ids.npy` and the gallery
        (`embeddings.npy` for brute force, `index.faiss` for faiss).
        """
        directory = os.path.abspath(directory)
        if os.path.exists(directory) and not os.path.isfile(os.path.join(directory,
                                                                          "index.json")):
            if not os.path.isdir(directory) or os.listdir(directory):
                raise ValueError(f"{directory!r} exists and is not a saved keras_cmr index: "
                                 "refusing to replace it.")
        parent = os.path.dirname(directory)
        os.makedirs(parent, exist_ok=True)
        temporary = tempfile.mkdtemp(prefix=".tmp-index-", dir=parent)
        try:
            np.save(os.path.join(temporary, "ids.npy"), self.ids)
            self._save_gallery(temporary)
            with open(os.path.join(temporary, "index.json"), "w") as stream:
                json.dump(self._config(), stream, indent=2)
            # mkdtemp makes the folder private (0700); give it the mode mkdir would.
            os.chmod(temporary, 0o777 & ~saving._umask())
            old = None
            if os.path.exists(directory):
                old = tempfile.mkdtemp(prefix=".old-index-", dir=parent)
                os.rmdir(old)
                os.rename(directory, old)
            os.rename(temporary, directory)
            if old is not None:
                shutil.rmtree(old)
        finally:
            if os.path.exists(temporary):
                shutil.rmtree(temporary)


class BruteForceIndex(_GalleryIndex):
    """Exact top-k search: chunked `keras.ops.matmul` + `keras.ops.top_k`, on any backend.

    Each gallery chunk is converted to a backend tensor once per search and scored against
    all queries, chunk by chunk; the running k best of each query are merged on the host.
    Cost O(n_queries * n_gallery * dim); memory O(chunk scores + gallery chunk + n * k).
    Equal scores at the k-th place inside one gallery chunk may be cut differently on
    PyTorch, whose `topk` is not stable; everywhere else the earlier-added item ranks first.

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
        gallery_chunk_rows: gallery rows per backend tensor.
    """

    kind = "brute_force"

    def __init__(self, metric="cosine", gallery_chunk_rows=_GALLERY_CHUNK_ROWS):
        super().__init__(metric)
        self.gallery_chunk_rows = _positive_int(gallery_chunk_rows, "gallery_chunk_rows")
        # (array, needs normalising): copies added in memory are normalised once, on add;
        # `.npy` files left on disk are normalised chunk by chunk as they are read.
        self._parts = []

    def add(self, embeddings, ids=None):
        """Adds gallery rows (copied, checked for NaN/inf, normalised for "cosine")."""
        rows = _float_rows(embeddings, "embeddings", self.dim)
        rows = _finite_float32(rows, "embeddings")
        ids = self._new_ids(len(rows), ids)
        rows = _normalized(rows) if self.metric == "cosine" else np.array(rows)
        self._append(rows, ids, needs_normalizing=False)

    def add_npy(self, path, ids=None):
        """Adds the rows of a 2-D `.npy` file, left on disk: each search reads it chunk by chunk.

        Only a chunk of rows is ever in memory. Rows are checked for NaN/inf as each chunk is
        read, so a bad row fails the search that reads it, naming the file and the row.
        """
        rows = NpyRows(path)
        if self.dim is not None and rows.shape[1] != self.dim:
            raise ValueError(f"{path!r} holds {rows.shape[1]}-d rows, the index holds "
                             f"{self.dim}-d embeddings.")
        self._append(rows, self._new_ids(len(rows), ids), needs_normalizing=True, source=path)

    def _append(self, rows, ids, needs_normalizing, source="embeddings"):
        self.dim = rows.shape[1]
        self._parts.append((rows, needs_normalizing, source))
        self._ids.append(ids)

    def _gallery_chunks(self):
        """(first position, float32 rows ready to score) over the whole gallery."""
        position = 0
        for rows, needs_normalizing, source in self._parts:
            for start in range(0, len(rows), self.gallery_chunk_rows):
                chunk = rows[start:start + self.gallery_chunk_rows]
                if needs_normalizing:
                    name = source if isinstance(source, str) else "embeddings"
                    chunk = _finite_float32(chunk, name, first_row=start)
                    if self.metric == "cosine":
                        chunk = _normalized(chunk)
                yield position + start, np.ascontiguousarray(chunk, dtype=np.float32)
            position += len(rows)

    def _search(self, queries, k, verbose):
        n_queries, n_gallery = len(queries), self.ntotal
        chunk_rows = min(self.gallery_chunk_rows, n_gallery)
        query_rows = max(1, min(n_queries, _CHUNK_SCORES // chunk_rows))
        query_chunks = [ops.convert_to_tensor(queries[start:start + query_rows])
                        for start in range(0, n_queries, query_rows)]
        best_scores = np.full((n_queries, 0), -np.inf, np.float32)
        best_positions = np.zeros((n_queries, 0), np.int64)
        steps = -(-n_gallery // chunk_rows) * len(query_chunks)
        show = verbose if verbose != "auto" else n_queries * n_gallery >= _PROGRESS_SCORES
        progress = keras.utils.Progbar(steps, unit_name="chunk") if show else None
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
            best_scores, best_positions = _merge_top_k(
                np.concatenate([best_scores, np.concatenate(found_scores)], axis=1),
                np.concatenate([best_positions, np.concatenate(found_positions)], axis=1), k)
        return best_scores, best_positions

    def _save_gallery(self, directory):
        # Written chunk by chunk, so a gallery on disk is never in memory whole.
        with open(os.path.join(directory, "embeddings.npy"), "wb") as stream:
            np.lib.format.write_array_header_1_0(stream, {
                "descr": np.lib.format.dtype_to_descr(np.dtype("<f4")),
                "fortran_order": False, "shape": (self.ntotal, self.dim)})
            for _, rows in self._gallery_chunks():
                rows.astype("<f4", copy=False).tofile(stream)

    @classmethod
    def _load(cls, directory, config, ids, on_disk):
        index = cls(metric=config["metric"])
        path = os.path.join(directory, "embeddings.npy")
        if on_disk:
            index.add_npy(path, ids=ids)
        else:
            # Saved rows are already normalised: keep them as stored.
            rows = np.load(path, allow_pickle=False)
            index._append(_finite_float32(_float_rows(rows, path), path), ids,
                          needs_normalizing=False)
        return index


def _import_faiss():
    try:
        import faiss
    except ImportError:
        raise ImportError("FaissIndex needs faiss: `pip install faiss-cpu` (or faiss-gpu), "
                          "or use BruteForceIndex, which needs nothing more.") from None
    return faiss


class FaissIndex(_GalleryIndex):
    """Exact top-k search with faiss' `IndexFlatIP` (optional: `pip install faiss-cpu`).

    The same interface and results as `BruteForceIndex` (up to float rounding in ties), for
    users who already serve with faiss. The gallery lives in faiss' memory.

    Args:
        metric: "cosine" (rows L2-normalised) or "dot".
    """

    kind = "faiss"

    def __init__(self, metric="cosine"):
        super().__init__(metric)
        self._faiss = _import_faiss()
        self._index = None

    def add(self, embeddings, ids=None, chunk_rows=_GALLERY_CHUNK_ROWS):
        """Adds gallery rows (checked for NaN/inf, normalised for "cosine"), chunk by chunk."""
        rows = _float_rows(embeddings, "embeddings", self.dim)
        ids = self._new_ids(len(rows), ids)
        if self._index is None:
            self._index = self._faiss.IndexFlatIP(rows.shape[1])
            self.dim = rows.shape[1]
        for start in range(0, len(rows), chunk_rows):
            chunk = _finite_float32(rows[start:start + chunk_rows], "embeddings", start)
            self._index.add(_normalized(chunk) if self.metric == "cosine"
                            else np.ascontiguousarray(chunk))
        self._ids.append(ids)

    def add_npy(self, path, ids=None, chunk_rows=_GALLERY_CHUNK_ROWS):
        """Adds the rows of a 2-D `.npy` file, read chunk by chunk into faiss."""
        rows = NpyRows(path)
        ids = self._new_ids(len(rows), ids)
        for start in range(0, len(rows), chunk_rows):
            self.add(rows[start:start + chunk_rows], ids[start:start + chunk_rows])

    def _search(self, queries, k, verbose):
        del verbose  # one faiss call
        scores, positions = self._index.search(np.ascontiguousarray(queries), k)
        return scores.astype(np.float32), positions.astype(np.int64)

    def _save_gallery(self, directory):
        self._faiss.write_index(self._index, os.path.join(directory, "index.faiss"))

    @classmethod
    def _load(cls, directory, config, ids, on_disk):
        index = cls(metric=config["metric"])
        faiss = index._faiss
        flags = faiss.IO_FLAG_MMAP if on_disk else 0
        index._index = faiss.read_index(os.path.join(directory, "index.faiss"), flags)
        index.dim = index._index.d
        index._ids.append(ids)
        return index


_INDEX_CLASSES = {cls.kind: cls for cls in (BruteForceIndex, FaissIndex)}


def load_index(directory, on_disk=True):
    """Loads an index saved by `save`.

    With `on_disk` the gallery stays on disk: a brute-force index reads it chunk by chunk at
    each search, a faiss index memory-maps its file. Else it is read into memory.

    Raises:
        FileNotFoundError: no saved index at `directory`.
        ValueError: a folder whose files are missing, corrupt or of an unknown kind.
    """
    config_path = os.path.join(directory, "index.json")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"no saved keras_cmr index at {directory!r} (it has no "
                                "index.json).")
    try:
        with open(config_path) as stream:
            config = json.load(stream)
        kind = config["kind"]
        index_class = _INDEX_CLASSES[kind]
        ids = np.load(os.path.join(directory, "ids.npy"), allow_pickle=False)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{directory!r} is not a readable keras_cmr index: "
                         f"{type(error).__name__}: {error}") from error
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{directory!r} was saved in index format "
                         f"{config.get('format_version')!r}; this keras_cmr reads "
                         f"{FORMAT_VERSION}.")
    if ids.shape != (config["ntotal"],):
        raise ValueError(f"{directory!r} is inconsistent: ids.npy holds {ids.shape[0]} ids, "
                         f"index.json says {config['ntotal']} items.")
    index = index_class._load(directory, config, ids.astype(np.int64), on_disk)
    if index.ntotal != config["ntotal"] or index.dim != config["dim"]:
        raise ValueError(f"{directory!r} is inconsistent: its gallery holds {index.ntotal} "
                         f"x {index.dim}, index.json says {config['ntotal']} x "
                         f"{config['dim']}.")
    return index
