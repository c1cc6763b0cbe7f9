"""Retrieval at scale: top-k indexes over a gallery and the metrics read off them.

`BruteForceIndex` is exact, on the host's BLAS (numpy galleries on a CPU-only backend) or on
`keras.ops` on every backend; `FaissIndex` wraps faiss (optional dependency): exact
`IndexFlatIP`, or approximate IVF and HNSW (`keras_cmr.retrieval.approximate`). Both save to
and load from a folder, and search a gallery left on disk chunk by chunk; `evaluate_index`
gives mAP@K, P@k and recall@k, and with `exact=` the recall of an approximate index against
the exact one.
"""

from keras_cmr.retrieval.index import BruteForceIndex, FaissIndex, load_index
from keras_cmr.retrieval.metrics import evaluate_index

__all__ = ["BruteForceIndex", "FaissIndex", "evaluate_index", "load_index"]
