"""Saving and loading: files written atomically, models loaded in Keras' safe mode.

A crash mid-write leaves the previous file intact; a corrupt, truncated or foreign file gets
an error naming it, and a file carrying code (a lambda) is refused.
"""

import json
import os
import zipfile

import keras

from keras_cmr.utils.files import atomic_path

__all__ = ["atomic_path", "load_model", "save_model", "write_json"]


def save_model(model, path):
    """`model.save(path)` without ever leaving a half-written file at `path`."""
    if not str(path).endswith(".keras"):
        raise ValueError(f"model files must end in '.keras', got {path!r}.")
    if not model.built:
        raise ValueError(f"{type(model).__name__} {model.name!r} has no weights yet: build "
                         "or train it before saving.")
    with atomic_path(path) as temporary:
        model.save(temporary)


def write_json(data, path):
    """Writes `data` as indented, key-sorted JSON to `path`, atomically."""
    with atomic_path(path) as temporary:
        with open(temporary, "w") as stream:
            json.dump(data, stream, indent=2, sort_keys=True)
            stream.write("\n")


def load_model(path, expected_class=None):
    """Loads a keras_cmr `.keras` file in safe mode (no code in the file is ever run).

    Args:
        path: the `.keras` file.
        expected_class: optional class (or tuple) the loaded model must be an instance of.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: the file is not a `.keras` archive, is truncated or corrupt, or names
            classes that are neither Keras' nor keras_cmr's.
        TypeError: the model is not a keras_cmr model, or not of `expected_class`.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no model file at {path!r}.")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path!r} is not a .keras archive (not a zip file): truncated, "
                         "corrupt or of another format.")
    with zipfile.ZipFile(path) as archive:
        members = archive.namelist()
    if "config.json" not in members:
        raise ValueError(f"{path!r} is a zip archive but not a .keras model file (it has no "
                         f"config.json; it holds {sorted(members)[:5]}).")
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types; the caller needs the file named
        raise ValueError(f"could not load {path!r} as a keras_cmr model: "
                         f"{type(error).__name__}: {error}") from error
    if not hasattr(model, "encode_image") or not hasattr(model, "encode_text"):
        raise TypeError(f"{path!r} holds a {type(model).__name__}, not a keras_cmr model "
                        "(it has no encode_image / encode_text).")
    if expected_class is not None and not isinstance(model, expected_class):
        raise TypeError(f"{path!r} holds a {type(model).__name__}, expected "
                        f"{getattr(expected_class, '__name__', expected_class)}.")
    return model
