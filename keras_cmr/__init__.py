"""keras-cmr: supervised cross-modal retrieval in Keras 3.

Importing the package registers every layer, loss and model with Keras' serialization, so
`keras.saving.load_model("model.keras")` works after a plain `import keras_cmr`.
`keras_cmr.experiment` and `keras_cmr.linear`, which register nothing, load on first use.
"""

import importlib

from keras_cmr import (callbacks, config, datasets, distribution, encoders, evaluation,
                       failures, layers, losses, methods, models, options, results, retrieval,
                       saving, statistics, utils)

__version__ = "0.1.0"

_ON_FIRST_USE = ("experiment", "linear")


def __getattr__(name):
    # An imported subpackage is an attribute already: this is reached only for the others.
    if name in _ON_FIRST_USE:
        return importlib.import_module(f"keras_cmr.{name}")
    raise AttributeError(f"module 'keras_cmr' has no attribute {name!r}")


__all__ = ["callbacks", "config", "datasets", "distribution", "encoders", "evaluation",
           "failures", "layers", "losses", "methods", "models", "options", "results", "retrieval",
           "saving", "statistics", "utils", *_ON_FIRST_USE, "__version__"]
