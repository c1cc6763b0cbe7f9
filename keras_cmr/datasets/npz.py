"""The library's own `.npz` format for cross-modal data sets: read safely, written atomically.

Keys: `image_train`, `text_train`, `label_train`, `image_test`, `text_test`, `label_test`
(required); `image_val`, `text_val`, `label_val` (all three or none); `class_names` (strings),
`num_classes` (0-d integer), `name` (0-d string) and `allow_unseen_classes` (0-d bool, written
only when True) (optional). Other keys are ignored, so converted releases may carry extras such
as ids.
"""

import os
import zipfile
import zlib

import numpy as np

from keras_cmr.datasets.container import CrossModalDataset, CrossModalSplit
from keras_cmr.utils.files import atomic_path

ARRAY_KINDS = ("image", "text", "label")
REQUIRED_KEYS = tuple(f"{kind}_{split}" for split in ("train", "test") for kind in ARRAY_KINDS)
VAL_KEYS = tuple(f"{kind}_val" for kind in ARRAY_KINDS)
OPTIONAL_KEYS = ("class_names", "num_classes", "name", "allow_unseen_classes")
ZIP_MAGIC = b"PK\x03\x04"


def _read(path):
    """Read the format's arrays from `path`, with every failure naming the file."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(len(ZIP_MAGIC))
    except FileNotFoundError:
        raise FileNotFoundError(f"no .npz file at {path!r}") from None
    if magic != ZIP_MAGIC:
        # Without this check np.load would fall back to pickle and report a misleading error.
        raise ValueError(f"{path!r} is not a .npz (zip) archive: it is corrupt or not a .npz")
    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        raise ValueError(f"{path!r} is truncated or corrupt: {error}") from error
    with archive:
        found = sorted(archive.files)
        missing = [key for key in REQUIRED_KEYS if key not in found]
        if missing:
            raise ValueError(
                f"{path!r} lacks the keys {missing}; found {found}. Required: "
                f"{list(REQUIRED_KEYS)}, optional: {list(VAL_KEYS + OPTIONAL_KEYS)}"
            )
        val_present = [key for key in VAL_KEYS if key in found]
        if val_present and len(val_present) != len(VAL_KEYS):
            raise ValueError(
                f"{path!r} has {val_present} but not all of {list(VAL_KEYS)}: a validation "
                "split needs all three arrays, or none"
            )
        wanted = REQUIRED_KEYS + tuple(val_present) + OPTIONAL_KEYS
        return {key: _read_array(archive, key, path) for key in wanted if key in found}


def _read_array(archive, key, path):
    """Read one member of an open archive; an object array is refused, not unpickled."""
    try:
        return archive[key]
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise ValueError(
                f"{path!r}: {key!r} is an object array, which would need pickle to load; "
                "pickled arrays are refused because unpickling can run arbitrary code. Store "
                "numbers and strings as plain numpy arrays."
            ) from error
        raise ValueError(f"{path!r}: {key!r} could not be read: {error}") from error
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        raise ValueError(f"{path!r} is truncated or corrupt ({key!r}): {error}") from error


def load_npz(path, name=None, allow_unseen_classes=None):
    """Load a cross-modal data set from a `.npz` file in the format described above.

    Args:
        path: path of the `.npz` file.
        name: the data set's name; defaults to the stored `name`, else the file's stem.
        allow_unseen_classes: see `CrossModalDataset`; None uses the stored flag (default
            False).

    Returns:
        A `CrossModalDataset`.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if required keys are missing (listing the missing and found keys), the
            validation arrays are incomplete, an array is pickled (object dtype), the file is
            truncated or corrupt, or the arrays fail the container's validation (the message
            then starts with the file's path).
        TypeError: if an array holds no numbers (message prefixed with the path).
    """
    path = os.fspath(path)
    arrays = _read(path)
    if name is None:
        stem = os.path.splitext(os.path.basename(path))[0]
        name = str(arrays["name"]) if "name" in arrays else stem
    if allow_unseen_classes is None:
        allow_unseen_classes = bool(arrays.get("allow_unseen_classes", False))
    try:
        splits = {
            split: CrossModalSplit(
                arrays[f"image_{split}"], arrays[f"text_{split}"], arrays[f"label_{split}"],
                name=split,
            )
            for split in ("train", "val", "test")
            if f"label_{split}" in arrays
        }
        num_classes = int(arrays["num_classes"]) if "num_classes" in arrays else None
        class_names = arrays["class_names"].tolist() if "class_names" in arrays else None
        return CrossModalDataset(
            train=splits["train"],
            test=splits["test"],
            val=splits.get("val"),
            num_classes=num_classes,
            class_names=class_names,
            name=name,
            allow_unseen_classes=allow_unseen_classes,
        )
    except (ValueError, TypeError) as error:
        # The container names the array, split and row; add the file they came from.
        raise type(error)(f"{path!r}: {error}") from error


def save_npz(dataset, path):
    """Write `dataset` to `path` in the format `load_npz` reads, atomically.

    The arrays are written with `keras_cmr.utils.files.atomic_path`: a crash leaves either the
    old file or the complete new one, never a half-written file.

    Args:
        dataset: a `CrossModalDataset`.
        path: destination file (written exactly as given; no suffix is added).

    Returns:
        `path`.

    Raises:
        TypeError: if `dataset` is not a `CrossModalDataset`.
        OSError: if the destination folder cannot be made or written.
    """
    if not isinstance(dataset, CrossModalDataset):
        raise TypeError(f"dataset must be a CrossModalDataset, got {type(dataset).__name__}")
    path = os.fspath(path)
    arrays = {}
    for split_name, split in dataset.splits.items():
        arrays[f"image_{split_name}"] = split.image
        arrays[f"text_{split_name}"] = split.text
        arrays[f"label_{split_name}"] = split.labels
    if dataset.class_names is not None:
        arrays["class_names"] = np.array(dataset.class_names, dtype=str)
    arrays["num_classes"] = np.array(dataset.num_classes, dtype=np.int64)
    arrays["name"] = np.array(dataset.name, dtype=str)
    if dataset.allow_unseen_classes:
        arrays["allow_unseen_classes"] = np.array(True)

    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:  # a handle: np.savez would append ".npz"
            np.savez_compressed(handle, **arrays)
    return path
