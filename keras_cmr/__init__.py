"""keras-cmr: supervised cross-modal retrieval in Keras 3.

Importing the package registers every layer, loss and model with Keras' serialization, so
`keras.saving.load_model("model.keras")` works after a plain `import keras_cmr`.
"""

from keras_cmr import (callbacks, datasets, encoders, evaluation, layers, losses, models,
                       retrieval, saving)

__version__ = "0.1.0"

__all__ = ["callbacks", "datasets", "encoders", "evaluation", "layers", "losses", "models",
           "retrieval", "saving", "__version__"]
