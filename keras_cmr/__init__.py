"""keras-cmr: supervised cross-modal retrieval in Keras 3.

Importing the package registers every layer, loss and model with Keras' serialization, so
`keras.saving.load_model("model.keras")` works after a plain `import keras_cmr`.

The one exception: with the environment variable `KERAS_CMR_LAZY_IMPORT=1` set at the first
import, the subpackages load on first use (`keras_cmr.models` etc.) or on `import_all()`,
and nothing is registered before that. The `keras-cmr` command sets it for its own import
only, so that `keras-cmr --help` imports no deep-learning framework.
"""

import importlib
import os

__version__ = "0.1.0"

_SUBPACKAGES = ("callbacks", "config", "datasets", "distribution", "encoders", "evaluation",
                "failures", "layers", "losses", "methods", "models", "retrieval", "saving",
                "statistics", "utils")
# Loaded on first use in either mode: they register nothing with Keras.
_ON_FIRST_USE = ("experiment", "linear")
LAZY_IMPORT_VARIABLE = "KERAS_CMR_LAZY_IMPORT"


def import_all():
    """Imports every subpackage, registering its classes with Keras' serialization."""
    for name in _SUBPACKAGES:
        importlib.import_module(f"keras_cmr.{name}")


if os.environ.get(LAZY_IMPORT_VARIABLE) != "1":
    import_all()


def __getattr__(name):
    # An imported subpackage is an attribute already: this is reached only for the others.
    if name in _SUBPACKAGES or name in _ON_FIRST_USE:
        return importlib.import_module(f"keras_cmr.{name}")
    raise AttributeError(f"module 'keras_cmr' has no attribute {name!r}")


__all__ = [*_SUBPACKAGES, *_ON_FIRST_USE, "LAZY_IMPORT_VARIABLE", "import_all", "__version__"]
