"""Compiled train and predict steps shared by the models of one comparison (JAX).

Every run of `compare` builds a new model, and `jax.jit` traces and compiles each model's train
step anew, twice when the training split is not a multiple of the batch (the smaller last batch
is a new shape), and its predict step once more. On the Wikipedia set that was 3.7 s per fit,
half of a source fold's time (our measurement, `benchmarks/compare_time.py`). Keras' JAX steps
are stateless: they take every variable's value as an argument. So a later model whose
computation is the same as an earlier one's (same class, same configuration up to layer names,
same variables in the same order) can run the earlier model's jitted steps on its own values:
the same compiled program on the same inputs, hence the same numbers, and already compiled for
the shapes the earlier fits saw.

A `CompiledSteps` holds the lenders; `compare` makes one and hands it to every fit it runs.
TensorFlow's steps capture their model's variables and PyTorch's run eagerly, so there it
does nothing. A lender stays in memory as long as the `CompiledSteps` (its steps hold it), so
models whose variables exceed `MAX_LENDER_BYTES` (large pretrained towers, whose compilation
is small next to their training) do not lend.
"""

import json

import keras
import numpy as np

from keras_cmr import distribution

MAX_LENDER_BYTES = 2**28
_TOO_LARGE = "too large"  # the key's models compile their own steps


class CompiledSteps:
    """The compiled steps that the fits given it lend to each other (on JAX; elsewhere
    `lend` does nothing)."""

    def __init__(self):
        self.lenders = {} if keras.backend.backend() == "jax" else None

    def lend(self, model, config):
        """Before `model.fit` (after `compile`): gives `model` the train and predict functions
        of an earlier model of the same computation, or keeps `model` as the lender of the
        next ones. Returns a callback for `fit` that checks, once `fit` has built the model,
        that its variables match the lender's (else it compiles its own), and lets a lender
        above `MAX_LENDER_BYTES` go; None when sharing does not apply."""
        if (self.lenders is None or not isinstance(model, keras.Model)
                or distribution.process_count() > 1 or keras.distribution.distribution()):
            return None
        key = _computation_key(model, config)
        lender = self.lenders.get(key)
        if lender is _TOO_LARGE:
            return None
        if lender is None or lender.train_function is None:
            self.lenders[key] = model  # it compiles its own steps, to lend to the next ones
            return _Sharing(self.lenders, key)
        model.train_function = lender.train_function
        model.predict_function = lender.predict_function
        return _Sharing(self.lenders, key, lender)


def _computation_key(model, config):
    """What fixes a model's computation before it is built: its class, its configuration
    without layer names (Keras numbers them per instance) and the training configuration."""
    def without_names(value):
        if isinstance(value, dict):
            return {key: without_names(item) for key, item in value.items() if key != "name"}
        if isinstance(value, (list, tuple)):
            return [without_names(item) for item in value]
        return value

    model_config = without_names(keras.saving.serialize_keras_object(model))
    return (type(model), json.dumps(model_config, sort_keys=True, default=repr), repr(config))


def _variable_signature(model):
    return [(tuple(variable.shape), variable.dtype, variable.trainable)
            for variable in model.variables]


class _Sharing(keras.callbacks.Callback):
    """At the start of training, a borrower whose variables differ from its lender's (same
    configuration, other shapes, e.g. inputs of another width) compiles its own steps; at the
    end, a lender above `MAX_LENDER_BYTES` is let go."""

    def __init__(self, lenders, key, lender=None):
        super().__init__()
        self.lenders, self.key, self.lender = lenders, key, lender

    def on_train_begin(self, logs=None):
        if (self.lender is not None
                and _variable_signature(self.model) != _variable_signature(self.lender)):
            self.model.make_train_function(force=True)
            self.model.predict_function = None

    def on_train_end(self, logs=None):
        size = sum(np.prod(variable.shape) * np.dtype(variable.dtype).itemsize
                   for variable in self.model.variables)
        if self.lender is None and size > MAX_LENDER_BYTES:
            self.lenders[self.key] = _TOO_LARGE
