"""Top-k indexes over a gallery of embeddings, and loading a saved one.

The indexes are defined in `keras_cmr.retrieval.search` (what is searched, and how) and
`keras_cmr.retrieval.storage` (the files on disk); this module names every kind and loads a
saved folder. `from keras_cmr.retrieval.index import BruteForceIndex, ...` keeps working.
"""

from keras_cmr.retrieval.search import METRICS, BruteForceIndex, FaissIndex, GalleryIndex
from keras_cmr.retrieval.storage import FORMAT_VERSION, NpyRows, read_index_folder

# kind (as saved in index.json) -> index class; a new kind of index registers itself here.
INDEX_CLASSES = {cls.kind: cls for cls in (BruteForceIndex, FaissIndex)}

__all__ = ["BruteForceIndex", "FORMAT_VERSION", "FaissIndex", "GalleryIndex", "INDEX_CLASSES",
           "METRICS", "NpyRows", "load_index"]


def load_index(directory, on_disk=True):
    """Loads an index saved by `save`.

    With `on_disk` the gallery stays on disk: a brute-force index reads it chunk by chunk at
    each search, a faiss index memory-maps its file. Else it is read into memory.

    Raises:
        FileNotFoundError: no saved index at `directory`.
        ValueError: a folder whose files are missing, corrupt or of an unknown kind.
    """
    index_class, config, ids = read_index_folder(directory, INDEX_CLASSES)
    index = index_class._load(directory, config, ids, on_disk)
    if index.ntotal != config["ntotal"] or index.dim != config["dim"]:
        raise ValueError(f"{directory!r} is inconsistent: its gallery holds {index.ntotal} "
                         f"x {index.dim}, index.json says {config['ntotal']} x "
                         f"{config['dim']}.")
    return index
