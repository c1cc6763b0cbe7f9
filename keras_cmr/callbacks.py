"""Training callbacks: reproducible epochs for resuming, and failures that stop training.

`ReproducibleEpochs` makes each epoch's randomness a function of (seed, epoch);
`StopOnNonFiniteLoss` and `StopOnCollapse` raise `keras_cmr.failures.TrainingFailure` so a
diverged or collapsed run ends with an error instead of a saved model.
"""

import math

import keras
import numpy as np

from keras_cmr.evaluation import check_not_collapsed
from keras_cmr.failures import TrainingFailure
from keras_cmr.layers import PortableDropout
from keras_cmr.utils.checks import check_seed


class ReproducibleEpochs(keras.callbacks.Callback):
    """Makes the randomness of epoch e a function of (seed, e) alone, so training can resume.

    `keras.callbacks.BackupAndRestore` restores the weights, the optimizer state and the epoch
    counter after a crash, but not the dropout seed generators (they are not in the weights
    file) nor a data set's shuffling state; a resumed run then draws other dropout masks and
    another batch order than the uninterrupted run would have. At the start of every epoch this
    callback sets each seed generator of the model to a state drawn from (seed, epoch, its
    index) and moves a `keras_cmr.datasets.PairBatches` to that epoch's order, so a run
    killed in epoch e and resumed ends with the same weights as a run never interrupted (on
    the same backend and machine: kernels need not be bit-identical across them).

    Example:

    ```python
    batches = PairBatches.from_split(train, batch_size=100, seed=0)
    model.fit(batches, epochs=50, callbacks=[
        keras.callbacks.BackupAndRestore("backup/"),
        ReproducibleEpochs(seed=0, data=batches),
    ])
    ```

    Args:
        seed: non-negative integer.
        data: the `PairBatches` given to `fit`, or None (numpy inputs with `shuffle=True`
            draw their order from the backend's random state and cannot be replayed).
    """

    def __init__(self, seed=0, data=None):
        super().__init__()
        if data is not None and not hasattr(data, "epoch"):
            raise ValueError(f"data must be a keras_cmr PairBatches (with an `epoch`), got "
                             f"{type(data).__name__}")
        self.seed = check_seed(seed)
        self.data = data

    def on_epoch_begin(self, epoch, logs=None):
        if self.data is not None:
            # PairBatches counts from 1 in `fit` (fit resets it once before the first epoch).
            self.data.epoch = epoch + 1
        generators = _seed_generators(self.model)
        draws = np.random.default_rng([self.seed, epoch]).integers(
            0, 2**31 - 1, size=(len(generators) + 1, 2))
        if _draws_from_global_generators(self.model):
            # Keras' own dropout may draw from the backend's global generator (PyTorch does
            # for a layer without an explicit seed). Reseeding it costs a retrace per epoch
            # on TensorFlow, so it is done only for models that hold such layers.
            keras.utils.set_random_seed(int(draws[0, 0]))
        for generator, state in zip(generators, draws[1:]):
            generator.state.assign(keras.ops.cast(state, generator.state.dtype))


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises `TrainingFailure` at the end of the first epoch whose training loss is NaN or inf.

    The epoch's loss is the mean over its batches, so one non-finite batch makes it non-finite.
    The message names the epoch (counted from 1, as Keras prints it) and suggests a lower
    learning rate. Unlike `keras.callbacks.TerminateOnNaN`, which only stops `fit` quietly, the
    error reaches the caller, so no diverged model is saved as a result. It checks per epoch,
    not per batch: a batch hook would make Keras dispatch every training step synchronously.
    """

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        self.model.stop_training = True
        raise TrainingFailure(
            f"training diverged: the loss became {float(loss)} in epoch {epoch + 1}"
            f"{self._rate()}; try a lower learning rate (e.g. ten times lower). No model was "
            "saved.")

    def _rate(self):
        rate = getattr(getattr(self.model, "optimizer", None), "learning_rate", None)
        try:
            return f" (learning rate {float(keras.ops.convert_to_numpy(rate)):g})"
        except (TypeError, ValueError):  # a schedule, or no optimizer: leave it out
            return ""


class StopOnCollapse(keras.callbacks.Callback):
    """At the end of training, raises `TrainingFailure` if the model's embeddings collapsed.

    Runs `keras_cmr.evaluation.check_not_collapsed` on `split` (the validation split) with the
    model's final weights; put it after `keras.callbacks.EarlyStopping(restore_best_weights=
    True)` in the callback list so it checks the weights that will be kept. The figures of a
    passing check are in `self.result`.

    Args:
        split: a `CrossModalSplit`, normally the validation split.
        margin, atol, check_chance: as in `check_not_collapsed`.
    """

    def __init__(self, split, margin=None, atol=None, check_chance=True):
        super().__init__()
        self.split = split
        self.options = {key: value for key, value in (("margin", margin), ("atol", atol))
                        if value is not None}
        self.options["check_chance"] = check_chance
        self.result = None

    def on_train_end(self, logs=None):
        self.result = check_not_collapsed(self.model, self.split, **self.options)


def _draws_from_global_generators(model):
    """Whether a layer of `model` other than a `PortableDropout` owns a seed generator."""
    return any(getattr(layer, "_seed_generators", ()) and not isinstance(layer, PortableDropout)
               for layer in model._flatten_layers(include_self=True))


def _seed_generators(model):
    """Every seed generator of the model's layers, in a fixed (layer traversal) order."""
    generators, seen = [], set()
    for layer in model._flatten_layers(include_self=True):
        for generator in getattr(layer, "_seed_generators", ()):
            if id(generator) not in seen:
                seen.add(id(generator))
                generators.append(generator)
    return generators
