"""Approximate search with faiss: the IVF and HNSW structures behind `FaissIndex`, and the
recall of an approximate top-k against the exact one.

- "flat" (`IndexFlatIP`): exact; every query scores the whole gallery.
- "ivf" (`IndexIVFFlat`): k-means splits the gallery into `nlist` cells, trained on a sample of
  it; a query scores only the rows of the `nprobe` cells whose centroids are nearest. More
  `nprobe`: higher recall, slower. Rows are stored whole (no compression).
- "ivf_sq8" (`IndexIVFScalarQuantizer`, `QT_8bit`): the same cells, each row stored as one
  byte per dimension (its value scaled between the training sample's minimum and maximum of
  that dimension): a quarter of the memory of "ivf", scores from the decoded rows. Chosen over
  IVF-PQ for a gallery too large to hold as float32 (faiss' "Guidelines to choose an index":
  every faiss index lives in RAM; an IVF "Flat" index stores the rows uncompressed): 8 bits
  per dimension lose little of a cosine score, so no re-ranking with the full rows (which
  faiss' refine index keeps in RAM) is needed; our measurement, benchmarks/README.md.
- "hnsw" (`IndexHNSWFlat`): a graph of `hnsw_m` links per row, built as rows are added (no
  training); a query walks it with a beam of `ef_search`. More `ef_search`: higher recall,
  slower; `ef_construction` is the beam while building.

All use the inner product, on unit rows for "cosine". The choices between them rest on our
own measurements (benchmarks/approximate.py, docs/scaling.md).
"""

import numbers

import numpy as np

INDEX_TYPES = ("flat", "ivf", "ivf_sq8", "hnsw")
# The index types split into k-means cells (trained, searched with `nprobe`).
IVF_TYPES = ("ivf", "ivf_sq8")
# Rows per IVF cell in the default training sample (faiss warns under 39; it samples at most
# 256 per cell itself).
_TRAIN_ROWS_PER_CELL = 64
# Contiguous blocks read from a `.npy` gallery to draw its training sample.
_NPY_SAMPLE_BLOCKS = 64


def _positive(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}.")
    return int(value)


def faiss_options(index_type="flat", nlist=1024, nprobe=16, hnsw_m=32, ef_construction=200,
                  ef_search=128, train_size=None):
    """The checked options of a faiss index (what `FaissIndex` saves in index.json).

    Raises:
        ValueError: for an unknown `index_type` or a value that is not an integer >= 1.
    """
    if index_type not in INDEX_TYPES:
        raise ValueError(f"`index_type` must be one of {INDEX_TYPES}, got {index_type!r}.")
    options = {"index_type": index_type}
    if index_type in IVF_TYPES:
        options.update(nlist=_positive(nlist, "nlist"), nprobe=_positive(nprobe, "nprobe"),
                       train_size=_positive(train_size or _TRAIN_ROWS_PER_CELL * nlist,
                                            "train_size"))
    elif index_type == "hnsw":
        options.update(hnsw_m=_positive(hnsw_m, "hnsw_m"),
                       ef_construction=_positive(ef_construction, "ef_construction"),
                       ef_search=_positive(ef_search, "ef_search"))
    return options


def new_faiss_index(faiss, dim, options):
    """An empty faiss index of `options["index_type"]` over inner products of `dim`-d rows."""
    kind = options["index_type"]
    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    # faiss' Python wrapper keeps the quantizer alive with the index.
    if kind == "ivf":
        return faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, options["nlist"],
                                  faiss.METRIC_INNER_PRODUCT)
    if kind == "ivf_sq8":
        return faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, options["nlist"],
                                             faiss.ScalarQuantizer.QT_8bit,
                                             faiss.METRIC_INNER_PRODUCT)
    index = faiss.IndexHNSWFlat(dim, options["hnsw_m"], faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = options["ef_construction"]
    return index


def apply_search_options(index, options):
    """Sets the search-time knobs (nprobe, efSearch) of a faiss index from `options`."""
    if options["index_type"] in IVF_TYPES:
        index.nprobe = options["nprobe"]
    elif options["index_type"] == "hnsw":
        index.hnsw.efSearch = options["ef_search"]


def training_sample(rows, size):
    """At most `size` rows of `rows`, evenly spaced (all of them when there are fewer)."""
    if len(rows) <= size:
        return rows
    return rows[np.linspace(0, len(rows) - 1, size).astype(np.int64)]


def npy_training_sample(npy_rows, size):
    """At most `size` rows of a gallery on disk (`NpyRows`), read as evenly spaced blocks, so
    the sample spans the whole file without reading it whole."""
    if len(npy_rows) <= size:
        return npy_rows[0:len(npy_rows)]
    blocks = min(_NPY_SAMPLE_BLOCKS, size)
    width = size // blocks
    starts = np.linspace(0, len(npy_rows) - width, blocks).astype(np.int64)
    return np.concatenate([npy_rows[int(start):int(start) + width] for start in starts])


def recall_against_exact(positions, exact_positions):
    """The mean fraction of each query's exact top k (`exact_positions`, (n, k)) that an
    approximate search found in its own top k (`positions`, (n, k)): "recall@k" of approximate
    nearest-neighbour search. Padding (-1, fewer than k found) counts as missed."""
    positions, exact_positions = np.asarray(positions), np.asarray(exact_positions)
    if positions.shape != exact_positions.shape or positions.ndim != 2:
        raise ValueError(f"positions {positions.shape} and exact positions "
                         f"{exact_positions.shape} must be two (queries, k) arrays alike.")
    found = [len(np.intersect1d(row[row >= 0], exact)) for row, exact in
             zip(positions, exact_positions)]
    return float(np.mean(found) / positions.shape[1])
