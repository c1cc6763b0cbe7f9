"""Data-parallel training, and the global batch that the in-batch losses compare.

The in-batch losses (pair-wise, soft contrastive, and the class-wise means) must see the
*global* batch: every pair is compared with every other pair of the batch, whichever device
embedded it. How the backends get there differs, and this module is the one place that knows:

- JAX, `keras.distribution.DataParallel`: Keras jits the train step over arrays sharded along
  the batch axis, so `compute_loss` already sees the global batch and XLA inserts the
  collectives. `gather_global_batch` is the identity.
- TensorFlow, `tf.distribute.MirroredStrategy`: `compute_loss` runs once per replica on that
  replica's slice. `gather_global_batch` all-gathers the slices (replica order, axis 0); its
  gradient sums the replicas' upstream gradients and keeps this replica's rows. Each replica
  then computes the same global loss L, which Keras' mean reduction scales to L / R, so the
  summed replica gradients are exactly dL/dw (see `replica_share`).
- PyTorch: Keras 3.15 has no distribution backend for torch; training runs on one device and
  `gather_global_batch` is the identity. See docs/scaling.md.
"""

import contextlib
import math

import keras
from keras import ops, tree

from keras_cmr.distribution.processes import process_count


def _tf_replica_context():
    """The TF replica context of a strategy with more than one replica, else None.

    None outside TensorFlow, outside any strategy, in a cross-replica context (e.g. Keras'
    symbolic build under `strategy.scope()`), and for a one-replica strategy.
    """
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return None
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync < 2:
        return None
    return context


def replica_count():
    """How many replicas split the global batch of this loss computation: R inside the replica
    context of a TensorFlow strategy with R > 1 replicas, else 1 (JAX DataParallel computes the
    loss once, over the global batch)."""
    context = _tf_replica_context()
    return 1 if context is None else int(context.num_replicas_in_sync)


def gather_global_batch(tensors):
    """The global batch of `tensors` (a nested structure; None entries pass through).

    Inside a TensorFlow multi-replica context, every tensor is all-gathered along axis 0 in
    replica order (replicas may hold different row counts); gradients flow back to each
    replica's own rows. Everywhere else (JAX, PyTorch, TensorFlow without a strategy or with
    one replica) the identity. Tensors must have a batch axis and static other dimensions.

    Gather once per train step: the floating tensors travel in one differentiable collective.
    TensorFlow orders a step's backward collectives by its gradient tape, which may differ
    between replicas when two gathers' gradients are ready together, and replicas whose
    collectives run in different orders abort.

    Args:
        tensors: a tensor or a nested structure (dict, list, tuple) of tensors or None.

    Returns:
        the same structure, holding the global batch.
    """
    context = _tf_replica_context()
    if context is None:
        return tensors
    import tensorflow as tf

    flat = tree.flatten(tensors)
    floating, others = [], []
    for index, x in enumerate(flat):
        if x is None:
            continue
        if len(x.shape) == 0 or None in x.shape[1:]:
            raise ValueError("gather_global_batch needs tensors of shape (batch, ...) with "
                             f"static dimensions after the batch axis; received {x.shape}")
        is_float = keras.backend.is_float_dtype(keras.backend.standardize_dtype(x.dtype))
        (floating if is_float else others).append(index)
    gathered = list(flat)
    if floating:
        # One collective: the rows of all floating tensors side by side, (batch, sum of widths).
        dtype = tf.float64 if any(flat[i].dtype == tf.float64 for i in floating) else tf.float32
        widths = [math.prod(flat[i].shape[1:]) for i in floating]
        packed = tf.concat([tf.cast(tf.reshape(flat[i], [-1, width]), dtype)
                            for i, width in zip(floating, widths)], axis=1)
        columns = tf.split(context.all_gather(packed, axis=0), widths, axis=1)
        for i, column in zip(floating, columns):
            gathered[i] = tf.cast(tf.reshape(column, [-1, *flat[i].shape[1:]]), flat[i].dtype)
    for i in others:  # labels: no gradient, forward only
        value = context.all_gather(tf.stop_gradient(flat[i]), axis=0)
        # The gather loses the static shape; the losses check ranks and class counts.
        gathered[i] = tf.ensure_shape(value, [None, *flat[i].shape[1:]])
    return tree.pack_sequence_as(tensors, gathered)


def replica_share(loss, value):
    """What one replica adds to the step's loss, given `value = loss(...)` on a gathered batch.

    Every replica computes the same global loss L. The strategy sums the replicas' gradients
    and the gather's gradient sums them once more, so each replica must contribute L / R.
    Keras' mean reductions ("sum_over_batch_size", the default) already scale by 1 / R
    (`keras.src.losses.loss.scale_loss_for_distribution`); a "sum" reduction is divided here.
    Outside a multi-replica TensorFlow context, `value` itself.
    """
    replicas = replica_count()
    if replicas > 1 and getattr(loss, "reduction", None) == "sum":
        return value / replicas
    return value


def batch_multiple():
    """The number that every batch size must divide by: the devices along the batch axis of
    the JAX distribution in force (Keras shards each batch over them, `fit`, `evaluate` and
    `predict` alike), else 1 (TensorFlow's MirroredStrategy splits uneven batches itself).
    In a multi-process job, the batch a process feeds is its own share: the devices of one
    process along the batch axis."""
    if keras.backend.backend() != "jax":
        return 1
    distribution = keras.distribution.distribution()
    if distribution is None or not hasattr(distribution, "batch_dim_name"):
        return 1
    mesh = distribution.device_mesh
    devices = int(mesh.shape[list(mesh.axis_names).index(distribution.batch_dim_name)])
    return max(1, devices // process_count())


def scale_for_replicas(value):
    """`value / R` inside a TensorFlow multi-replica context, else `value`.

    For loss terms that every replica computes in full, e.g. the towers' regularisation
    penalties: the strategy sums the replicas' gradients, so each replica adds 1 / R of them
    (what Keras' own `compute_loss` does for `model.losses`).
    """
    replicas = replica_count()
    if replicas == 1:
        return value
    return value * ops.cast(1.0 / replicas, keras.backend.standardize_dtype(value.dtype))


class _ReplicatedData(keras.distribution.DataParallel):
    """DataParallel's mesh and variables, with every input replicated rather than sharded."""

    def get_data_layout(self, data_shape):
        return keras.distribution.TensorLayout([None] * len(data_shape), self.device_mesh)


@contextlib.contextmanager
def replicated_inputs():
    """A scope in which every process of a multi-process JAX job passes the same, whole inputs
    to `predict` and receives the whole outputs.

    Under data parallelism each process feeds its own rows and the outputs are sharded over
    the processes, which no process can read whole. Validation embeds the same rows in every
    process instead: the inputs and the (replicated) weights on every device, so every process
    computes the same figures and takes the same early-stopping decision. Outside a
    multi-process job, nothing changes.
    """
    distribution = keras.distribution.distribution()
    if process_count() == 1 or distribution is None:
        yield
        return
    with _ReplicatedData(device_mesh=distribution.device_mesh,
                         auto_shard_dataset=False).scope():
        yield


# One MirroredStrategy per device list and process: each new strategy numbers its collectives
# from the same keys, and TensorFlow's runtime mixes up those of two strategies on one device
# group (the collectives abort with a shape or type mismatch).
_MIRRORED_STRATEGIES = {}


def _mirrored_strategy(devices):
    import tensorflow as tf

    devices = tuple(device if device.startswith("/") else f"/{device}" for device in devices)
    if devices not in _MIRRORED_STRATEGIES:
        _MIRRORED_STRATEGIES[devices] = tf.distribute.MirroredStrategy(list(devices))
    return _MIRRORED_STRATEGIES[devices]


@contextlib.contextmanager
def data_parallel(devices=None):
    """A data-parallel scope: build, compile and fit the models inside it.

    JAX: `keras.distribution.DataParallel(devices)` set for the scope's duration. TensorFlow:
    the scope of a `tf.distribute.MirroredStrategy(devices)`, one per device list and process
    (two strategies over the same devices break each other's collectives), so the two MET
    stages may open a scope each. The default devices are `keras.distribution.list_devices()`
    (the accelerators, else the CPUs). The global batch size must divide by the number of
    devices (see docs/scaling.md). Yields the distribution or the strategy.

    PyTorch raises `NotImplementedError`: Keras 3.15 has no torch distribution backend.

    Example:

    ```python
    with keras_cmr.distribution.data_parallel():
        model = PairwiseModel(CrossModalEncoder.projection(64), keras_cmr.losses.InfoNCELoss())
        model.compile(optimizer="adam")
        model.fit(x, labels, batch_size=256)   # 256 pairs over all devices, global negatives
    ```

    Args:
        devices: device names as `keras.distribution.list_devices()` gives them
            ("gpu:0", "cpu:1", ...), or None for all of them.
    """
    backend = keras.backend.backend()
    if backend not in ("jax", "tensorflow"):
        raise NotImplementedError(
            f"data_parallel supports the jax and tensorflow backends; Keras {keras.__version__} "
            f"has no distribution backend for {backend!r}: train on one device (see "
            "docs/scaling.md)."
        )
    devices = list(keras.distribution.list_devices() if devices is None else devices)
    if backend == "jax":
        # Multi-process: each process feeds its own rows (`process_rows`), never a shard of one
        # shared dataset.
        distribution = keras.distribution.DataParallel(
            devices=devices, auto_shard_dataset=process_count() == 1)
        with distribution.scope():
            yield distribution
        return
    strategy = _mirrored_strategy(devices)
    with strategy.scope():
        yield strategy
