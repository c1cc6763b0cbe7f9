"""How `fit` is fed and compiled per backend: step grouping, and data sets kept on the device.

`default_steps_per_execution()` is what `CrossModalTrainer.compile` uses when the caller
leaves `steps_per_execution` unset ("auto"). The choice rests on our measurement
(benchmarks/training_fit.py, benchmarks/README.md, issue 16): on TensorFlow one `tf.function`
call per step costs about as much as the step itself at the protocol's shapes, and running
`TENSORFLOW_STEPS_PER_EXECUTION` steps per call (a `tf.while_loop` inside the graph, Keras'
own mechanism) gave 1.3x (default towers) and 1.9x (tiny towers) the pairs/s on CPU. JAX
was 2x slower with grouped steps, and Keras' PyTorch trainer refuses anything but 1; both
keep 1.

A callback that hooks single batches (`on_train_batch_begin` / `_end`, `on_batch_begin` /
`_end`) would see only every 20th of them, so with such a callback "auto" runs single steps
(`steps_for_callbacks`).

`device_inputs(inputs, labels)` turns a feature data set into backend tensors once, on the
default device (the accelerator when there is one). `fit` then slices each batch from them on
that device; no host-to-device copy of features is made per step (see docs/input_pipeline.md).
"""

import keras
import numpy as np
from keras import ops

# Our measurement (benchmarks/README.md, issue 16): 20, 50 and 200 were within the noise of
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


def device_inputs(inputs, labels):
    """The features and labels of a data set as backend tensors on the default device.

    Converted once (float32 features, integer or float labels as given); pass the result to
    `fit` like numpy arrays: `model.fit(*device_inputs(x, y), batch_size=100)`. Each batch is
    then gathered on the device holding the tensors (JAX and PyTorch: the accelerator; on
    TensorFlow Keras feeds tensors through `tf.data` on the host, see
    docs/input_pipeline.md). The data set must fit in device memory.

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
        raise ValueError(f"device_inputs takes a dict of feature arrays; got "
                         f"{type(inputs).__name__}")
    labels = np.asarray(labels)
    tensors = {}
    for key, array in inputs.items():
        array = np.asarray(array, dtype=np.float32)
        if array.ndim != 2 or len(array) != len(labels):
            raise ValueError(f"device_inputs: {key!r} must be 2-D with one row per label "
                             f"({len(labels)}); received shape {array.shape}")
        if not np.all(np.isfinite(array)):
            row = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
            raise ValueError(f"device_inputs: {key!r} row {row} holds NaN or inf")
        tensors[key] = ops.convert_to_tensor(array)
    return tensors, ops.convert_to_tensor(labels)


def host_array(value):
    """A numpy view of an array or backend tensor (a host copy for device tensors)."""
    return value if isinstance(value, np.ndarray) else ops.convert_to_numpy(value)
