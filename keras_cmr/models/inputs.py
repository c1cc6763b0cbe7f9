"""How `fit` is fed and compiled per backend: step grouping, and data sets kept on the device.

`default_steps_per_execution()` is what `CrossModalTrainer.compile` uses when the caller
leaves `steps_per_execution` unset ("auto"). The choice rests on our measurement
(benchmarks/training_fit.py, benchmarks/README.md): on TensorFlow one `tf.function`
call per step costs about as much as the step itself at the protocol's shapes, and running
`TENSORFLOW_STEPS_PER_EXECUTION` steps per call (a `tf.while_loop` inside the graph, Keras'
own mechanism) gave 1.3x (default towers) and 1.9x (tiny towers) the pairs/s on CPU. JAX
was 2x slower with grouped steps, and Keras' PyTorch trainer refuses anything but 1; both
keep 1.

A callback that hooks single batches (`on_train_batch_begin` / `_end`, `on_batch_begin` /
`_end`) would see only every 20th of them, so with such a callback "auto" runs single steps
(`steps_for_callbacks`).

`DeviceBatches(inputs, labels, batch_size)` turns a feature data set into backend tensors once,
on the default device (the accelerator when there is one), and gathers each batch there: no
host-to-device copy of features is made per step (see docs/input_pipeline.md). Plain backend
tensors given to `fit` would not do: Keras' array adapter turns JAX arrays into numpy arrays
and copies every batch back to the device.
"""

import keras
import numpy as np
from keras import ops

from keras_cmr.datasets.batching import check_batch_size
from keras_cmr.datasets.order import EpochOrder
from keras_cmr.utils.checks import check_seed

# Our measurement (benchmarks/README.md): 20, 50 and 200 were within the noise of
# each other at both tower sizes; the smallest of them keeps the last partial group short.
TENSORFLOW_STEPS_PER_EXECUTION = 20


def default_steps_per_execution(backend=None):
    """Train steps per compiled call that keras_cmr uses on `backend` (default: the current)."""
    backend = keras.backend.backend() if backend is None else backend
    return TENSORFLOW_STEPS_PER_EXECUTION if backend == "tensorflow" else 1


def resolve_steps_per_execution(steps_per_execution):
    """`default_steps_per_execution()` for "auto" (or None), else the caller's positive int."""
    if steps_per_execution is None or steps_per_execution == "auto":
        return default_steps_per_execution()
    if (isinstance(steps_per_execution, bool) or not isinstance(steps_per_execution, int)
            or steps_per_execution < 1):
        raise ValueError('steps_per_execution must be "auto" or a positive integer; '
                         f"received {steps_per_execution!r}")
    return steps_per_execution


BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")


def steps_for_callbacks(callbacks):
    """The "auto" steps per execution for a `fit` with `callbacks`: 1 when one of them
    overrides a per-batch hook of `keras.callbacks.Callback`, else the backend's default."""
    for callback in getattr(callbacks, "callbacks", callbacks) or ():  # a list or CallbackList
        if any(getattr(type(callback), hook, None) is not getattr(keras.callbacks.Callback, hook)
               for hook in BATCH_HOOKS):
            return 1
    return default_steps_per_execution()


def steps_per_epoch(x, batch_size):
    """The steps of one epoch of `fit(x, batch_size=...)`: `len(x)` for a `PyDataset`,
    batches of a dict of arrays (`batch_size`, Keras' default 32), None for anything else."""
    if isinstance(x, keras.utils.PyDataset):
        return len(x)
    if isinstance(x, dict) and x:
        rows = len(next(iter(x.values())))
        return -(-rows // (32 if batch_size is None else batch_size))
    return None


def device_inputs(inputs, labels):
    """The features and labels of a data set, checked, as backend tensors on the default device
    (float32 features, labels as given). `DeviceBatches` batches them.

    Args:
        inputs: dict of 2-D feature arrays with one row per pair (e.g. "image", "text", and
            "source_image", "source_text" for a `TransferModel` without source model).
        labels: (n,) class indices or (n, C) multi-hot labels.

    Returns:
        `(inputs, labels)` as backend tensors, the dict with the same keys.

    Raises:
        ValueError: for inputs that are not a dict, features that are not 2-D, NaN or inf
            features, or row counts that differ from the labels'.
    """
    if not isinstance(inputs, dict) or not inputs:
        raise ValueError(f"DeviceBatches takes a dict of feature arrays; got "
                         f"{type(inputs).__name__}")
    labels = np.asarray(labels)
    tensors = {}
    for key, array in inputs.items():
        array = np.asarray(array, dtype=np.float32)
        if array.ndim != 2 or len(array) != len(labels):
            raise ValueError(f"{key!r} must be 2-D with one row per label "
                             f"({len(labels)}); received shape {array.shape}")
        if not np.all(np.isfinite(array)):
            row = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
            raise ValueError(f"{key!r} row {row} holds NaN or inf")
        tensors[key] = ops.convert_to_tensor(array)
    return tensors, ops.convert_to_tensor(labels)


def host_array(value):
    """A numpy view of an array or backend tensor (a host copy for device tensors)."""
    return value if isinstance(value, np.ndarray) else ops.convert_to_numpy(value)


class DeviceBatches(keras.utils.PyDataset):
    """Batches `({"image": x, "text": y, ...}, labels)` gathered on the device from a data set
    kept there.

    The features and labels are converted once (`device_inputs`) onto the default device;
    each epoch's order is the `keras_cmr.datasets.EpochOrder` of the seed (that of
    `keras_cmr.datasets.PairBatches` with the same seed), drawn on the host and moved to the device
    once, and every batch is an `ops.take` of its rows there. Pass it to `fit` as the data
    set, with `shuffle=False` (`fit`'s True would reorder the batches once more, with Python's
    global RNG): `model.fit(DeviceBatches(x, y, batch_size=100), epochs=50, shuffle=False)`.
    The data set must fit in device memory; one device only (not under
    `keras_cmr.distribution.data_parallel`).

    Args:
        inputs: dict of 2-D feature arrays, one row per pair ("image", "text", and
            "source_image", "source_text" for a `TransferModel` without source model).
        labels: (n,) class indices or (n, C) multi-hot labels.
        batch_size: pairs per batch.
        shuffle: a new order each epoch (else the pairs in order).
        seed: non-negative integer seed of the orders.
        drop_remainder: drop the last incomplete batch, so every step has the same shapes.

    Raises:
        ValueError: as `device_inputs`, and for a `batch_size` below 2, above the number of
            pairs with `drop_remainder`, or leaving a last batch of a single pair: the
            in-batch losses compare each pair with the others of its batch.
    """

    def __init__(self, inputs, labels, batch_size=100, shuffle=True, seed=0,
                 drop_remainder=False):
        super().__init__()
        self.inputs, self.labels = device_inputs(inputs, labels)
        self.num_pairs = int(ops.shape(self.labels)[0])
        self.shuffle, self.drop_remainder = bool(shuffle), bool(drop_remainder)
        self.batch_size = check_batch_size(batch_size, self.num_pairs, self.drop_remainder)
        self.seed = check_seed(seed)
        self.order = EpochOrder(self.num_pairs, self.batch_size, self.seed, self.shuffle,
                                self.drop_remainder)
        self.epoch = 0
        self._order = (None, None)  # (epoch, the epoch's row order on the device)

    def __len__(self):
        return len(self.order)

    def __getitem__(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(f"batch {index} out of range for {len(self)} batches")
        start = (index % len(self)) * self.batch_size
        rows = self._rows()[start:start + self.batch_size]
        features = {key: ops.take(value, rows, axis=0) for key, value in self.inputs.items()}
        return features, ops.take(self.labels, rows, axis=0)

    def on_epoch_end(self):
        self.epoch += 1

    def _rows(self):
        epoch, order = self._order
        if epoch != self.epoch:
            rows = self.order.permutation(self.epoch)
            order = ops.convert_to_tensor(rows.astype("int32"))
            self._order = (self.epoch, order)
        return order
