"""Data-parallel training: 2 devices give the 1-device losses and weights, global negatives.

Each device check runs in a child process that creates two host devices before its backend
starts: JAX (`--xla_force_host_platform_device_count=2`) in the jax run of the suite,
TensorFlow (two logical CPUs) in the tensorflow run. The torch run checks what torch users get.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_cmr import losses
from keras_cmr.distribution import (batch_multiple, data_parallel, gather_global_batch,
                                    replica_count, replica_share, scale_for_replicas)
from keras_cmr.models import CrossModalEncoder, PairwiseModel

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BACKEND = keras.backend.backend()

# Trains two models 3 steps with SGD (a factor in the gradients would show; Adam hides it),
# once on one device and once on two from the same initial weights, the same batches in order
# and no dropout; prints one JSON line of measurements for the parent to check.
CHILD = textwrap.dedent("""
    import json, os, sys
    backend = os.environ["KERAS_BACKEND"]
    if backend == "tensorflow":
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        # Grappler's graph rewrites cost seconds per traced step and gain nothing here.
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    import keras
    import numpy as np
    from keras import ops
    from keras_cmr import losses
    from keras_cmr.distribution import (batch_multiple, data_parallel, gather_global_batch,
                                        replica_count, scale_for_replicas)
    from keras_cmr.models import CrossModalEncoder, SourceModel, TransferModel

    # Batches of 16, 8 pairs per device. On TensorFlow the last batch has 15 pairs, split 8 / 7
    # (the global means must still be exact); a JAX batch must divide by the device count. (Keras'
    # TF trainer averages the replicas' first batches to build the model: they must be even.)
    batch = 16
    num_pairs = 47 if backend == "tensorflow" else 48
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=num_pairs)
    centres = rng.normal(size=(4, 6))
    x = {"image": (centres[labels] + rng.normal(size=(num_pairs, 6))).astype("float32"),
         "text": (centres[labels][:, :5] + rng.normal(size=(num_pairs, 5))).astype("float32")}
    first = {key: value[:batch] for key, value in x.items()}
    shapes = {"image": (None, 6), "text": (None, 5)}

    def encoder(name):
        return CrossModalEncoder.projection(8, hidden_dims=(16,), dropout=0.0, name=name)

    def build(kind, run_eagerly=False):
        if kind == "transfer":
            source = SourceModel(encoder("source_encoder"), 4, head="prototype")
            source.build(shapes)
            model = TransferModel(encoder("target"), source,
                                  losses.SoftContrastiveLoss(intra_modal_weight=0.5))
        else:
            # A "sum" reduction: keras_cmr divides it by the replicas (Keras scales means only).
            model = SourceModel(encoder("target"), 4, pair_loss_weight=1 / batch,
                                pair_loss=losses.ContrastiveLoss(reduction="sum"))
        model.build(shapes)
        model.compile(optimizer=keras.optimizers.SGD(0.5), run_eagerly=run_eagerly)
        return model

    class FirstLoss(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:
                self.loss = float(logs["loss"])

    def train(model):
        first_loss = FirstLoss()
        model.fit(x, labels, batch_size=batch, epochs=1, shuffle=False, verbose=0,
                  callbacks=[first_loss])
        return first_loss.loss, [ops.convert_to_numpy(v) for v in model.weights]

    def replica_copies(variable):
        if backend == "jax":
            assert variable.value.sharding.is_fully_replicated, variable.path
            return [np.asarray(s.data) for s in variable.value.addressable_shards]
        return [np.asarray(v) for v in strategy.experimental_local_results(variable.value)]

    report = {}
    for kind in ("transfer", "naive_sum"):
        # The reference; TensorFlow runs it eagerly (no tracing to wait for), JAX compiles it.
        single = build(kind, run_eagerly=backend == "tensorflow")
        # Initial weights drawn here, the same on every run and both models (seeding Keras
        # would import TensorFlow into the JAX child: seconds).
        initial = [rng.normal(scale=0.5, size=w.shape).astype(w.dtype)
                   for w in single.get_weights()]
        single.set_weights(initial)
        # The mean of the two devices' own losses, what a local in-batch loss would report (once:
        # it shows that the global and the local losses differ on these batches).
        local = (single.evaluate(first, labels[:batch], batch_size=batch // 2, verbose=0)
                 if kind == "transfer" else None)
        single_loss, single_weights = train(single)
        with data_parallel() as strategy:
            model = build(kind)
            model.set_weights(initial)
            loss, weights = train(model)
            copies = [replica_copies(v) for v in model.weights]
            multiple = batch_multiple()
        report[kind] = {
            "devices": len(copies[0]), "batch_multiple": multiple,
            "loss_1": single_loss, "loss_2": loss,
            "local_mean": local,
            "weights_diff": max(float(np.max(np.abs(a - b)))
                                for a, b in zip(single_weights, weights)),
            "moved": max(float(np.max(np.abs(a - b))) for a, b in zip(initial, weights)),
            "replica_diff": max(float(np.max(np.abs(c[0] - c[-1]))) for c in copies),
        }
    if backend == "tensorflow":
        # The switch itself, on uneven replicas (2 rows and 1 row): replica order, labels kept
        # as integers with their static shape, None passed through, a per-replica scale of 1/2.
        with data_parallel() as strategy:
            values = strategy.experimental_distribute_values_from_function(
                lambda context: tf.fill([2 - context.replica_id_in_sync_group, 3],
                                        float(context.replica_id_in_sync_group)))

            @tf.function
            def probe(value):
                gathered = gather_global_batch(
                    {"x": value, "ids": tf.cast(value[:, 0], "int32"), "none": None})
                assert gathered["none"] is None and gathered["ids"].shape.rank == 1
                return (gathered["x"], gathered["ids"], replica_count(),
                        scale_for_replicas(tf.constant(3.0)))

            results = strategy.experimental_local_results(strategy.run(probe, (values,)))
        report["probe"] = [[np.asarray(t).tolist() for t in result] for result in results]
    if backend == "jax":
        # A batch that cannot be sharded over the 2 devices is refused before any step.
        with data_parallel():
            model = build("transfer")
            try:
                model.fit(x, labels, batch_size=15, epochs=1, verbose=0)
                report["odd_batch"] = "accepted"
            except ValueError as error:
                report["odd_batch"] = str(error)
    print("REPORT " + json.dumps(report), flush=True)
    os._exit(0)  # TensorFlow's teardown takes seconds
""")


def run_child(backend):
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=REPO_ROOT)
    if backend == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count=2".strip()
    completed = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO_ROOT, env=env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-4000:]
    line = next(line for line in completed.stdout.splitlines() if line.startswith("REPORT "))
    return json.loads(line[len("REPORT "):])


def test_data_parallel_training_on_this_backend():
    """JAX and TensorFlow: 2 devices train like 1 on the global batch; torch: one device."""
    if BACKEND == "torch":
        check_torch_trains_on_one_device_whatever_the_distribution()
    else:
        check_two_devices_train_like_one_on_the_global_batch()


def check_two_devices_train_like_one_on_the_global_batch():
    report = run_child(BACKEND)
    print(json.dumps(report, indent=1))
    if BACKEND == "tensorflow":
        gathered = [[0.0] * 3] * 2 + [[1.0] * 3]
        assert report.pop("probe") == [[gathered, [0, 0, 1], 2, 1.5]] * 2
    else:
        assert "shards every batch over 2 devices, so batch_size (15)" in \
            report.pop("odd_batch")
    for kind, figures in report.items():
        assert figures["devices"] == 2, kind
        # JAX shards every batch over the devices; TensorFlow splits uneven batches itself.
        assert figures["batch_multiple"] == (2 if BACKEND == "jax" else 1), kind
        # (1) The loss of the first step: the same on 2 devices as on 1, and the global batch's
        # (not the mean of the per-device halves, which a local in-batch loss would give).
        np.testing.assert_allclose(figures["loss_2"], figures["loss_1"], rtol=1e-5, err_msg=kind)
        if figures["local_mean"] is not None:
            assert abs(figures["loss_1"] - figures["local_mean"]) > 0.1 * figures["loss_1"]
        # (2) After 3 SGD steps: the weights moved, agree with one device, and the replicas hold
        # the same values.
        assert figures["moved"] > 1e-2, kind
        assert figures["weights_diff"] < 1e-5, (kind, figures)
        assert figures["replica_diff"] == 0.0, kind


def test_outside_a_replica_context_the_global_batch_is_the_local_one():
    # JAX DataParallel (one program over the global arrays), TensorFlow without a strategy and
    # PyTorch all compute the loss once: nothing to gather, nothing to rescale.
    labels = np.array([0, 1, 0, 2])
    tensors = {"image": keras.ops.ones((4, 3)), "labels": labels, "none": None}
    assert gather_global_batch(tensors) is tensors
    assert replica_count() == 1
    assert batch_multiple() == 1
    value = keras.ops.convert_to_tensor(2.0)
    assert scale_for_replicas(value) is value
    assert replica_share(losses.ContrastiveLoss(reduction="sum"), value) is value


def check_torch_trains_on_one_device_whatever_the_distribution():
    # docs/scaling.md: Keras 3.15 has no torch distribution backend. The distribution API
    # cannot list devices, keras_cmr's data_parallel refuses clearly, and a DataParallel given
    # its devices by hand is ignored: training runs on one device, over the whole batch.
    with pytest.raises(AttributeError):
        keras.distribution.list_devices()
    with pytest.raises(NotImplementedError, match="one device"):
        with data_parallel():
            pass
    rng = np.random.default_rng(0)
    x = {"image": rng.normal(size=(8, 6)).astype("float32"),
         "text": rng.normal(size=(8, 5)).astype("float32")}
    labels = np.arange(8) % 4
    with keras.distribution.DataParallel(devices=["cpu:0", "cpu:1"]).scope():
        model = PairwiseModel(CrossModalEncoder.projection(4, hidden_dims=(), dropout=0.0),
                              losses.ContrastiveLoss())
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        whole = float(keras.ops.convert_to_numpy(model.compute_loss(x, labels, model(x))))
        history = model.fit(x, labels, batch_size=8, epochs=1, verbose=0)
    np.testing.assert_allclose(history.history["loss"][0], whole, rtol=1e-5)
    assert len({str(v.value.device) for v in model.weights}) == 1
