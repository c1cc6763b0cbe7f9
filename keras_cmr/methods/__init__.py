"""The methods `keras_cmr.experiment` and the `keras-cmr` command can train, by name.

Each method is one registered entry (`register`): its name, a one-line description, whether
it trains after a source or may serve as one, and the function that builds its trainable
model. The built-in methods register themselves below, one module per family, exactly as user
code registers its own:

    from keras_cmr import methods

    def build(encoder, num_classes, config, source):
        return PairwiseModel(encoder, MyLoss())

    methods.register("my_loss", build, "pair-wise only: my loss")
    keras_cmr.experiment.compare(["my_loss", "met"], dataset, config, seeds=3)

Importing this package imports no deep-learning framework.
"""

from keras_cmr.methods.registry import Method, available, get, register, sources, unregister

# Registration order is the order of `available()`, of `--help` and of the default tables.
from keras_cmr.methods import class_wise, pair_wise, joint, transfer  # noqa: E402,F401,I001
from keras_cmr.methods import linear  # noqa: E402,F401,I001
from keras_cmr.methods import robust  # noqa: E402,F401,I001

__all__ = ["Method", "available", "get", "register", "sources", "unregister"]
