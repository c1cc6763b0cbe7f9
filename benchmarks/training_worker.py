"""One measurement of benchmarks/training.py, run in its own process.

    python benchmarks/training_worker.py KIND CONFIG_JSON OUT_PATH

KIND is one of MEASUREMENTS: keras (keras-cmr's `TransferModel.fit` on the backend named by
KERAS_BACKEND), torch-eager and jax-jit (the reference loops of training_reference.py) or
matmul (the matmul peak at the step's shapes). The result, or the error, is written to OUT_PATH
as JSON; the parent (training_runner.py) reads it.
"""

import json
import os
import sys
import time

import numpy as np

from training_environment import (block_tensorflow, device_of, precision, tensorflow_imported,
                                  threads_jax, threads_numpy, threads_tensorflow, threads_torch)
from training_problem import ADAM, SEED, make_data, step_flops, step_matmuls
from training_reference import measure_jax_jit, measure_torch_eager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure_keras(cfg):
    import keras

    from keras_cmr.datasets import PairBatches
    from keras_cmr.models import CrossModalEncoder, SourceModel, TransferModel

    backend = keras.backend.backend()
    if backend == "torch" and cfg.get("torch_tf32"):
        import torch

        torch.backends.cuda.matmul.allow_tf32 = True
    compile_log = []
    if backend == "jax":
        import logging

        import jax

        class CompileCounter(logging.Handler):
            def emit(self, record):
                if "ompiling" in record.getMessage():
                    compile_log.append(record.getMessage()[:120])

        jax.config.update("jax_log_compiles", True)
        logger = logging.getLogger("jax")
        logger.addHandler(CompileCounter(logging.DEBUG))
        logger.propagate = False

    traces = [0]

    class CountingTransferModel(TransferModel):
        def training_loss(self, *args, **kwargs):
            traces[0] += 1  # Python runs here once per trace (tf.function, jax.jit)
            return super().training_loss(*args, **kwargs)

    def compile_count():
        """XLA compilations (jax) or torch.compile graphs (torch) so far; else 0."""
        if backend == "torch" and cfg["jit_compile"] is True:
            from torch._dynamo.utils import counters

            return int(counters["stats"]["unique_graphs"])
        return len(compile_log)

    keras.utils.set_random_seed(SEED)
    image, text, labels = make_data(cfg)

    def encoder(name):
        return CrossModalEncoder.projection(cfg["embedding"], hidden_dims=(cfg["hidden"],),
                                            dropout=0.1, name=name)

    shapes = {"image": (None, cfg["dim"]), "text": (None, cfg["dim"])}
    source = SourceModel(encoder("source"), cfg["classes"], head="prototype")
    source.build(shapes)
    # On torch the counter is left out: eager runs it every step, and under torch.compile a
    # Python counter in the traced code would itself be guarded on and force a recompile.
    model_class = TransferModel if backend == "torch" else CountingTransferModel
    model = model_class(encoder("target"), source)
    jit = cfg["jit_compile"]
    model.compile(optimizer=keras.optimizers.Adam(ADAM["learning_rate"], beta_1=ADAM["beta_1"]),
                  jit_compile=jit, steps_per_execution=cfg["steps_per_execution"])
    if cfg["fit_input"] == "arrays":  # as keras_cmr.experiment: arrays, last batch partial
        data = {"x": {"image": image, "text": text}, "y": labels,
                "batch_size": cfg["batch_size"], "shuffle": True}
    else:
        data = {"x": PairBatches(image, text, labels, batch_size=cfg["batch_size"],
                                 shuffle=True, seed=SEED, drop_remainder=True)}

    class EpochTimer(keras.callbacks.Callback):
        # No batch hooks: Keras keeps its asynchronous per-batch dispatch.
        def __init__(self):
            super().__init__()
            self.times, self.traces, self.compiles = [], [], []

        def _sync(self):
            variables = self.model.trainable_variables  # empty before the first step builds
            if variables:
                keras.ops.convert_to_numpy(variables[-1])

        def on_epoch_begin(self, epoch, logs=None):
            self._sync()
            self._counts = (traces[0], compile_count())
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self._sync()
            self.times.append(time.perf_counter() - self._start)
            self.traces.append(traces[0] - self._counts[0])
            self.compiles.append(compile_count() - self._counts[1])

    timer = EpochTimer()
    history = model.fit(**data, epochs=1 + cfg["epochs"], verbose=cfg["verbose"],
                        callbacks=[timer])
    threads = {"tensorflow": threads_tensorflow, "torch": threads_torch,
               "jax": threads_jax}[backend]()
    return {
        "jit_compile_requested": jit,
        "jit_compile_resolved": bool(model.jit_compile),
        "steps_per_execution": int(model.steps_per_execution),  # as resolved
        "fit_input": cfg["fit_input"],
        "verbose": cfg["verbose"],
        "warmup_s": timer.times[0],
        "epoch_s": timer.times[1:],
        "traces_per_epoch": None if backend == "torch" else timer.traces,
        "compiles_per_epoch": timer.compiles if backend == "jax" or (
            backend == "torch" and jit is True) else None,
        "loss": [float(x) for x in history.history["loss"]],
        "threads": threads,
        "device": device_of(backend, model.trainable_variables[0]),
        "precision": precision(backend),
        "tensorflow_imported": tensorflow_imported(),
    }


def measure_matmul(cfg):
    """GFLOP/s of the step's list of matmuls, float32, in numpy, jax.jit and torch (best of
    trials each)."""
    shapes = step_matmuls(cfg)
    flops = step_flops(cfg)
    result = {}
    rng = np.random.default_rng(SEED)
    operands = [(rng.standard_normal((m, k), dtype=np.float32),
                 rng.standard_normal((k, n), dtype=np.float32),
                 np.empty((m, n), np.float32)) for m, k, n in shapes]

    def rate(run, sync=lambda: None, trials=7, seconds=0.3):
        run()
        sync()
        start, reps = time.perf_counter(), 0
        while time.perf_counter() - start < 0.05:
            run()
            reps += 1
        sync()
        per = (time.perf_counter() - start) / reps
        reps = max(1, int(seconds / per))
        best = float("inf")
        for _ in range(trials):
            start = time.perf_counter()
            for _ in range(reps):
                run()
            sync()
            best = min(best, (time.perf_counter() - start) / reps)
        return flops / best / 1e9

    if cfg["device"] != "gpu":
        result["numpy"] = rate(lambda: [np.matmul(a, b, out=c) for a, b, c in operands])
        result["numpy_threads"] = threads_numpy()
    try:
        import jax
        import jax.numpy as jnp

        pairs = [(jnp.asarray(a), jnp.asarray(b)) for a, b, _ in operands]
        run = jax.jit(lambda pairs: [a @ b for a, b in pairs])  # every product is returned
        last = [None]

        def run_jax():
            last[0] = run(pairs)

        result[f"jax_{jax.devices()[0].platform}"] = rate(
            run_jax, lambda: jax.block_until_ready(last[0]))
    except ImportError:
        pass
    try:
        import torch
    except ImportError:
        return result
    device = torch.device("cuda" if cfg["device"] == "gpu" else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = bool(cfg.get("torch_tf32"))
    tensors = [tuple(torch.from_numpy(x).to(device) for x in ops) for ops in operands]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    result[f"torch_{device.type}"] = rate(
        lambda: [torch.matmul(a, b, out=c) for a, b, c in tensors], sync)
    result["torch_threads"] = threads_torch()
    if device.type == "cuda":
        result["gpu"] = torch.cuda.get_device_name()
        result["torch_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
    return result


MEASUREMENTS = {"keras": measure_keras, "torch-eager": measure_torch_eager,
                "jax-jit": measure_jax_jit, "matmul": measure_matmul}


def main(kind, cfg_json, out):
    cfg = json.loads(cfg_json)
    sys.path.insert(0, ROOT)
    if cfg.get("block_tensorflow"):
        block_tensorflow()
    try:
        result = MEASUREMENTS[kind](cfg)
    except BaseException as error:  # report, do not hang the parent
        import traceback

        result = {"error": f"{type(error).__name__}: {error}",
                  "traceback": traceback.format_exc()[-3000:]}
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
