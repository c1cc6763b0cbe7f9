"""One string names a data set: used by the command line and by examples."""

import os

from keras_cmr.datasets.digits import load_digits_two_view
from keras_cmr.datasets.npz import load_npz
from keras_cmr.datasets.wikipedia import load_wikipedia

PATH_LOADERS = {"wikipedia": load_wikipedia, "npz": load_npz}
ACCEPTED_FORMS = ("digits", "wikipedia:PATH", "npz:PATH", "PATH.npz")


def load_dataset(spec):
    """Load the data set a spec string names.

    Args:
        spec: "digits" (the download-free stand-in, `load_digits_two_view`),
            "wikipedia:PATH" (`load_wikipedia`), "npz:PATH" (`load_npz`), or a bare path ending
            in ".npz" (`load_npz`).

    Returns:
        A `CrossModalDataset`.

    Raises:
        TypeError: if `spec` is not a string or path.
        ValueError: if `spec` matches none of the accepted forms.
        FileNotFoundError: as the loaders, when the path is missing.
    """
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a string, got {type(spec).__name__}")
    if spec == "digits":
        return load_digits_two_view()
    kind, separator, path = spec.partition(":")
    if separator and kind in PATH_LOADERS and path:
        return PATH_LOADERS[kind](path)
    if spec.endswith(".npz"):
        return load_npz(spec)
    raise ValueError(
        f"unknown data set spec {spec!r}; accepted forms: {', '.join(ACCEPTED_FORMS)}"
    )
