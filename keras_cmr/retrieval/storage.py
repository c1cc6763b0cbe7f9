"""How an index lives on disk: `.npy` galleries read a chunk at a time, and the saved folder.

A saved index is a folder holding `index.json` (kind, metric, dim, ntotal, format_version),
`ids.npy` and the gallery in the kind's own file (`embeddings.npy`, `index.faiss`, ...). It is
written beside its destination and renamed into place, so it is never half-written.
"""

import json
import os

import numpy as np

from keras_cmr.utils.files import atomic_directory

FORMAT_VERSION = 1
CONFIG_FILE = "index.json"
IDS_FILE = "ids.npy"


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


def write_npy_chunks(path, chunks, shape):
    """Writes float32 `chunks` (2-D arrays, in order) as one `.npy` file of `shape`.

    Chunk by chunk, so a gallery on disk is never in memory whole.
    """
    with open(path, "wb") as stream:
        np.lib.format.write_array_header_1_0(stream, {
            "descr": np.lib.format.dtype_to_descr(np.dtype("<f4")),
            "fortran_order": False, "shape": tuple(shape)})
        for rows in chunks:
            rows.astype("<f4", copy=False).tofile(stream)


def save_index_folder(directory, config, ids, save_gallery):
    """Writes an index folder: `config` (+ format_version), `ids`, and `save_gallery(folder)`.

    The folder is replaced whole; an existing folder that is not a saved index (and not empty)
    is refused.
    """
    with atomic_directory(directory, CONFIG_FILE, "a saved keras_cmr index") as temporary:
        np.save(os.path.join(temporary, IDS_FILE), ids)
        save_gallery(temporary)
        with open(os.path.join(temporary, CONFIG_FILE), "w") as stream:
            json.dump({**config, "format_version": FORMAT_VERSION}, stream, indent=2)


def read_index_folder(directory, classes):
    """(index class, config, int64 ids) of a saved index folder, checked against each other.

    `classes` maps each known kind (the config's "kind") to its index class.

    Raises:
        FileNotFoundError: no saved index at `directory`.
        ValueError: a folder whose files are missing, corrupt, of an unknown kind or of another
            format version.
    """
    config_path = os.path.join(directory, CONFIG_FILE)
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"no saved keras_cmr index at {directory!r} (it has no "
                                f"{CONFIG_FILE}).")
    try:
        with open(config_path) as stream:
            config = json.load(stream)
        index_class = classes[config["kind"]]
        ids = np.load(os.path.join(directory, IDS_FILE), allow_pickle=False)
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
    return index_class, config, ids.astype(np.int64)
