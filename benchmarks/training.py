"""Benchmark: MET transfer training speed, keras-cmr on each Keras backend against plain loops.

Run from the repository root:

    python benchmarks/training.py [--pairs 32000] [--batch-size 300] [--epochs 3]
                                  [--backends tensorflow,jax,torch] [--tf-jit both]
                                  [--torch-compile] [--steps-per-execution 1]
                                  [--fit-input pairbatches] [--verbose 0]
                                  [--skip-baselines] [--json PATH]

One training step of MET stage 2 at CLIP4CMR's shapes: a frozen source encoder embeds the batch
(inference mode, no gradient), the target encoder embeds it (dropout on), the soft contrastive
loss (library defaults: sigma 1, delta 1.5, label_mix 0.75, relative distances) compares them,
and Adam (lr 1e-3, beta_1 0.5, as `keras_cmr.experiment`) updates the target. Every tower of
source and target is `ProjectionTower(1024, hidden_dims=(256,))`: 1024 -> 256 -> GELU -> 1024 ->
dropout 0.1 -> L2 normalise, on 1024-d image and 1024-d text features. The data are `--pairs`
random float32 feature pairs (seed 0) with labels in [0, --classes); an epoch is
floor(pairs / batch) full batches (32,000 / 300: 106 batches, 31,800 pairs; the last 200
pairs are dropped so every step has the same shapes).

Methods (each in its own subprocess, one after the other):
  keras-cmr   `TransferModel.fit` on a `PairBatches(..., drop_remainder=True)` PyDataset with
              verbose=0, source = a `SourceModel`'s encoder (random weights), per backend:
              tensorflow with jit_compile="auto" (what keras-cmr's `compile` call gets; Keras
              resolves it to False on a CPU-only TensorFlow) and with jit_compile=True (XLA);
              jax with "auto" (resolves to True: the whole step under jax.jit); torch with "auto"
              (resolves to False: eager) and, with --torch-compile, jit_compile=True
              (torch.compile, inductor).
  torch-eager a plain PyTorch loop: nn.Linear/GELU/Dropout heads, the loss re-written in torch,
              torch.optim.Adam, source forward under torch.no_grad(), batches sliced from
              in-memory tensors, the loss read once per epoch.
  jax-jit     a plain jax.numpy loop: the whole step (gather, source, target, loss, grad, Adam)
              under one jax.jit with params and optimizer state donated; optax.adam if optax is
              installed, else Adam written out.
Before timing, each baseline checks that its loss equals keras_cmr's `soft_contrastive` and its
tower equals `ProjectionTower` on a small random batch (max abs difference <= 1e-5).

Timing: epoch 1 is a warm-up (tracing, compilation); epochs 2..1+E are timed, each from a
device sync to a device sync (a variable copied to numpy); the best is reported, all are kept
in the JSON. For keras-cmr on tensorflow and jax the script counts how often the Python loss
runs (once per trace) and, on jax, how many XLA compilations happen (with --torch-compile: new
dynamo graphs), in each timed epoch: all must be 0.

FLOPs of one step (matmuls only; bias, GELU, normalisation, the loss's elementwise terms and
Adam are O(n * width) or O(n^2) and left out): with n the batch, D the feature width, H the
hidden width, E the embedding width, per tower f = 2n(DH + HE):
  source forward, 2 towers              2f
  target forward, 2 towers              2f
  target backward, 2 towers             2 * (2n(DH + HE) weight grads + 2nHE input grad of the
                                        output layer; the first layer's input grad is not needed)
  loss: source s t^T, target u v^T and its two grads   4 * 2 n^2 E
At the default shapes (n 300, D 1024, H 256, E 1024): 2.94 GFLOP per step.
The matmul peak is measured (numpy, one jax.jit of all of them, torch; one process) as the rate
of that very list of matmuls, run back to back (numpy and torch into preallocated outputs), best
of several trials, once before and once after the methods; the best rate seen is the peak.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SEED = 0
TARGETS = {"keras-cmr[jax]": 2.0, "keras-cmr[tensorflow]": 1.0,
           "keras-cmr[tensorflow,xla]": 1.0, "keras-cmr[torch]": 0.8}
# The library defaults of keras_cmr.losses.soft_contrastive (margin form).
SIGMA, DELTA, LABEL_MIX, EPSILON = 1.0, 1.5, 0.75, 1e-30
ADAM = {"learning_rate": 1e-3, "beta_1": 0.5, "beta_2": 0.999, "epsilon": 1e-7}


# ---------------------------------------------------------------------------------------------
# Shapes, data, FLOPs
# ---------------------------------------------------------------------------------------------

def make_data(cfg):
    """(image, text, labels): random features and labels from SEED, or the parent's saved copy."""
    if cfg.get("data_dir"):
        return tuple(np.load(os.path.join(cfg["data_dir"], f"{name}.npy"))
                     for name in ("image", "text", "labels"))
    rng = np.random.default_rng(SEED)
    image = rng.standard_normal((cfg["pairs"], cfg["dim"]), dtype=np.float32)
    text = rng.standard_normal((cfg["pairs"], cfg["dim"]), dtype=np.float32)
    labels = rng.integers(0, cfg["classes"], cfg["pairs"]).astype(np.int32)
    return image, text, labels


def steps_per_epoch(cfg):
    return cfg["pairs"] // cfg["batch_size"]


def step_matmuls(cfg):
    """(m, k, n) of every matmul of one step, in order; FLOPs of each = 2mkn."""
    n, d, h, e = cfg["batch_size"], cfg["dim"], cfg["hidden"], cfg["embedding"]
    forward = [(n, d, h), (n, h, e)]
    backward = [(h, n, e), (n, e, h), (d, n, h)]  # dW2, dX2 (input grad of layer 2), dW1
    loss = [(n, e, n)] * 2 + [(n, n, e)] * 2  # s t^T, u v^T, d/du, d/dv
    return forward * 2 + forward * 2 + backward * 2 + loss  # source, target fwd, bwd, loss


def step_flops(cfg):
    return float(sum(2 * m * k * n for m, k, n in step_matmuls(cfg)))


# ---------------------------------------------------------------------------------------------
# Loss and towers, rewritten per framework (the math of keras_cmr/losses/soft_contrastive.py)
# ---------------------------------------------------------------------------------------------

def torch_soft_contrastive(u, v, s, t, labels):
    """Per-anchor soft contrastive loss, margin form, keras-cmr's defaults, in torch."""
    import torch

    def normalize(x):
        return x * torch.rsqrt(torch.clamp((x * x).sum(-1, keepdim=True), min=EPSILON))

    def squared(a, b):
        sq = (a * a).sum(-1)[:, None] + (b * b).sum(-1)[None, :] - 2.0 * a @ b.T
        return torch.clamp(sq, min=0.0)

    s, t = normalize(s), normalize(t)
    y = (labels[:, None] == labels[None, :]).float()
    w = LABEL_MIX * y + (1.0 - LABEL_MIX) * torch.exp(-squared(s, t) / SIGMA)
    margins = DELTA * (1.0 - w)
    sq = squared(u, v)
    positive = sq > EPSILON
    d = torch.where(positive, torch.sqrt(torch.where(positive, sq, 1.0)), 0.0)
    d = d / torch.clamp(d.mean(1, keepdim=True), min=EPSILON)
    return (w * d * d + (1.0 - w) * torch.relu(margins - d) ** 2).sum(1)


def jax_soft_contrastive(u, v, s, t, labels):
    """The same in jax.numpy."""
    import jax.numpy as jnp

    def normalize(x):
        return x * jnp.reciprocal(jnp.sqrt(jnp.maximum((x * x).sum(-1, keepdims=True),
                                                       EPSILON)))

    def squared(a, b):
        sq = (a * a).sum(-1)[:, None] + (b * b).sum(-1)[None, :] - 2.0 * a @ b.T
        return jnp.maximum(sq, 0.0)

    s, t = normalize(s), normalize(t)
    y = (labels[:, None] == labels[None, :]).astype(jnp.float32)
    w = LABEL_MIX * y + (1.0 - LABEL_MIX) * jnp.exp(-squared(s, t) / SIGMA)
    margins = DELTA * (1.0 - w)
    sq = squared(u, v)
    positive = sq > EPSILON
    d = jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)
    d = d / jnp.maximum(d.mean(1, keepdims=True), EPSILON)
    return (w * d * d + (1.0 - w) * jnp.maximum(margins - d, 0.0) ** 2).sum(1)


def verify_against_keras_cmr(loss_fn, tower_fn):
    """Max abs differences (loss, tower) of a baseline from keras_cmr on a small random batch.

    loss_fn(u, v, s, t, labels) and tower_fn([W1, b1, W2, b2], x) take and return numpy.
    """
    import keras

    from keras_cmr.layers import ProjectionTower
    from keras_cmr.losses import soft_contrastive

    rng = np.random.default_rng(1)
    n, e = 24, 32
    u, v, s, t = (rng.standard_normal((n, e), dtype=np.float32) for _ in range(4))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    labels = rng.integers(0, 4, n).astype(np.int32)
    reference = keras.ops.convert_to_numpy(soft_contrastive(u, v, s, t, labels))
    loss_error = float(np.max(np.abs(np.asarray(loss_fn(u, v, s, t, labels)) - reference)))
    mean_error = abs(float(np.mean(loss_fn(u, v, s, t, labels))) - float(reference.mean()))
    tower = ProjectionTower(e, hidden_dims=(16,), dropout=0.1)
    x = rng.standard_normal((n, 40), dtype=np.float32)
    expected = keras.ops.convert_to_numpy(tower(x, training=False))
    tower_error = float(np.max(np.abs(np.asarray(tower_fn(tower.get_weights(), x)) - expected)))
    result = {"loss_max_abs_diff": loss_error, "batch_loss_abs_diff": mean_error,
              "tower_max_abs_diff": tower_error, "batch_loss": float(reference.mean())}
    if max(loss_error, mean_error, tower_error) > 1e-5:
        raise AssertionError(f"baseline differs from keras_cmr: {result}")
    return result


# ---------------------------------------------------------------------------------------------
# Workers (each runs in its own process)
# ---------------------------------------------------------------------------------------------

def _threads_numpy():
    try:
        from threadpoolctl import threadpool_info

        np.ones((2, 2)) @ np.ones((2, 2))
        return ",".join(f"{i.get('internal_api')}={i.get('num_threads')}"
                        for i in threadpool_info())
    except ImportError:
        return "unknown"


def _threads_torch():
    import torch

    return f"torch intra={torch.get_num_threads()} inter={torch.get_num_interop_threads()}"


def _threads_jax():
    import jax

    platform = jax.devices()[0].platform
    default = " default (all cores)" if platform == "cpu" else ""
    return f"XLA:{platform.upper()}{default}; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"


def _precision(framework):
    """How float32 matmuls run: TF32 allowed or not (matters on NVIDIA GPUs only)."""
    if framework == "torch":
        import torch

        return f"torch allow_tf32={torch.backends.cuda.matmul.allow_tf32}"
    if framework == "jax":
        import jax

        return f"jax default_matmul_precision={jax.config.jax_default_matmul_precision}"
    import tensorflow as tf

    return f"tf tensor_float_32={tf.config.experimental.tensor_float_32_execution_enabled()}"


def _device_of(backend_name, variable):
    if backend_name == "torch":
        return str(variable.value.device)
    if backend_name == "jax":
        import jax

        return str(jax.devices()[0])
    return str(variable.value.device)


def worker_keras(cfg):
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
    if backend == "tensorflow":
        import tensorflow as tf

        threads = (f"tf intra={tf.config.threading.get_intra_op_parallelism_threads()} "
                   f"inter={tf.config.threading.get_inter_op_parallelism_threads()} (0 = all)")
    elif backend == "torch":
        threads = _threads_torch()
    else:
        threads = _threads_jax()
    return {
        "jit_compile_requested": jit,
        "jit_compile_resolved": bool(model.jit_compile),
        "steps_per_execution": cfg["steps_per_execution"],
        "fit_input": cfg["fit_input"],
        "verbose": cfg["verbose"],
        "warmup_s": timer.times[0],
        "epoch_s": timer.times[1:],
        "traces_per_epoch": None if backend == "torch" else timer.traces,
        "compiles_per_epoch": timer.compiles if backend == "jax" or (
            backend == "torch" and jit is True) else None,
        "loss": [float(x) for x in history.history["loss"]],
        "threads": threads,
        "device": _device_of(backend, model.trainable_variables[0]),
        "precision": _precision(backend),
        "tensorflow_imported": _tensorflow_imported(),
    }


def _torch_tower_numpy(weights, x):
    import torch

    w1, b1, w2, b2 = (torch.from_numpy(np.asarray(a)) for a in weights)
    tower = _torch_modules()[0](w1.shape[0], w1.shape[1], w2.shape[1])
    with torch.no_grad():
        tower.net[0].weight.copy_(w1.T)
        tower.net[0].bias.copy_(b1)
        tower.net[2].weight.copy_(w2.T)
        tower.net[2].bias.copy_(b2)
        tower.eval()
        return tower(torch.from_numpy(x)).numpy()


def _torch_modules():
    import torch
    from torch import nn

    class Tower(nn.Module):
        def __init__(self, d, h, e):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(d, h), nn.GELU(), nn.Linear(h, e), nn.Dropout(0.1))

        def forward(self, x):
            z = self.net(x)
            return z * torch.rsqrt(torch.clamp((z * z).sum(-1, keepdim=True), min=1e-12))

    class Encoder(nn.Module):
        def __init__(self, d, h, e):
            super().__init__()
            self.image, self.text = Tower(d, h, e), Tower(d, h, e)

    return Tower, Encoder


def worker_torch_eager(cfg):
    import torch

    def loss_numpy(u, v, s, t, labels):
        return torch_soft_contrastive(*(torch.from_numpy(a) for a in (u, v, s, t, labels))).numpy()

    torch.backends.cuda.matmul.allow_tf32 = False  # TF32 on a GPU would miss 1e-5
    check = verify_against_keras_cmr(loss_numpy, _torch_tower_numpy)
    torch.backends.cuda.matmul.allow_tf32 = bool(cfg.get("torch_tf32"))
    device = torch.device("cuda" if cfg["device"] == "gpu" else "cpu")
    torch.manual_seed(SEED)
    _, Encoder = _torch_modules()
    d, h, e, b = cfg["dim"], cfg["hidden"], cfg["embedding"], cfg["batch_size"]
    source, target = Encoder(d, h, e).to(device), Encoder(d, h, e).to(device)
    source.eval()
    source.requires_grad_(False)
    target.train()
    optimizer = torch.optim.Adam(target.parameters(), lr=ADAM["learning_rate"],
                                 betas=(ADAM["beta_1"], ADAM["beta_2"]), eps=ADAM["epsilon"])
    image, text, labels = (torch.from_numpy(a).to(device) for a in make_data(cfg))
    steps = steps_per_epoch(cfg)

    def epoch(number):
        order = np.random.default_rng([SEED, number]).permutation(cfg["pairs"])
        order = torch.from_numpy(order).to(device)
        total = torch.zeros((), device=device)
        for step in range(steps):
            rows = order[step * b:(step + 1) * b]
            xi, xt, y = image[rows], text[rows], labels[rows]
            with torch.no_grad():
                s, t = source.image(xi), source.text(xt)
            u, v = target.image(xi), target.text(xt)
            loss = torch_soft_contrastive(u, v, s, t, y).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
        return float(total) / steps  # the one host sync of the epoch

    times, losses = _timed_epochs(epoch, cfg["epochs"])
    return {"epoch_s": times[1:], "warmup_s": times[0], "loss": losses, "check": check,
            "threads": _threads_torch(), "device": str(device), "precision": _precision("torch"),
            "tensorflow_imported": _tensorflow_imported()}


def _timed_epochs(epoch, timed):
    times, losses = [], []
    for number in range(1 + timed):
        start = time.perf_counter()
        losses.append(epoch(number + 1))
        times.append(time.perf_counter() - start)
    return times, losses


def _jax_tower(p, x, key=None, rate=0.1):
    import jax
    import jax.numpy as jnp

    z = jax.nn.gelu(x @ p["w1"] + p["b1"], approximate=False) @ p["w2"] + p["b2"]
    if key is not None:
        keep = jax.random.bernoulli(key, 1.0 - rate, z.shape)
        z = jnp.where(keep, z / (1.0 - rate), 0.0)
    return z * jax.lax.rsqrt(jnp.maximum((z * z).sum(-1, keepdims=True), 1e-12))


def _adam(params):
    """(init state, update(grads, state, params) -> (params, state)): optax or by hand."""
    import jax
    import jax.numpy as jnp

    try:
        import optax

        optimizer = optax.adam(ADAM["learning_rate"], b1=ADAM["beta_1"], b2=ADAM["beta_2"],
                               eps=ADAM["epsilon"])

        def update(grads, state, params):
            updates, state = optimizer.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        return optimizer.init(params), update, f"optax {optax.__version__}"
    except ImportError:
        pass
    lr, b1, b2, eps = (ADAM[k] for k in ("learning_rate", "beta_1", "beta_2", "epsilon"))
    zeros = jax.tree.map(jnp.zeros_like, params)

    def update(grads, state, params):
        m, v, count = state
        count = count + 1
        m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
        scale = lr * jnp.sqrt(1 - b2 ** count) / (1 - b1 ** count)
        params = jax.tree.map(lambda p, m, v: p - scale * m / (jnp.sqrt(v) + eps), params, m, v)
        return params, (m, v, count)

    return (zeros, jax.tree.map(jnp.zeros_like, params), jnp.zeros((), jnp.int32)), update, \
        "Adam by hand (optax not installed)"


def worker_jax_jit(cfg):
    import functools

    import jax
    import jax.numpy as jnp

    def tower_numpy(weights, x):
        p = dict(zip(("w1", "b1", "w2", "b2"), (jnp.asarray(a) for a in weights)))
        return np.asarray(_jax_tower(p, jnp.asarray(x)))

    def loss_numpy(*arrays):
        return np.asarray(jax_soft_contrastive(*(jnp.asarray(a) for a in arrays)))

    with jax.default_matmul_precision("highest"):  # TF32 on a GPU would miss 1e-5
        check = verify_against_keras_cmr(loss_numpy, tower_numpy)
    d, h, e, b = cfg["dim"], cfg["hidden"], cfg["embedding"], cfg["batch_size"]
    rng = np.random.default_rng(SEED)

    def glorot(fan_in, fan_out):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return jnp.asarray(rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32))

    def tower_params():
        return {"w1": glorot(d, h), "b1": jnp.zeros(h), "w2": glorot(h, e), "b2": jnp.zeros(e)}

    source = {"image": tower_params(), "text": tower_params()}
    params = {"image": tower_params(), "text": tower_params()}
    opt_state, update, optimizer_name = _adam(params)
    image, text, labels = (jnp.asarray(a) for a in make_data(cfg))
    steps = steps_per_epoch(cfg)
    base_key = jax.random.key(SEED)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def train_step(params, opt_state, order, step, global_step):
        rows = jax.lax.dynamic_slice_in_dim(order, step * b, b)
        xi, xt, y = image[rows], text[rows], labels[rows]
        s = jax.lax.stop_gradient(_jax_tower(source["image"], xi))
        t = jax.lax.stop_gradient(_jax_tower(source["text"], xt))
        key_image, key_text = jax.random.split(jax.random.fold_in(base_key, global_step))

        def loss_fn(params):
            u = _jax_tower(params["image"], xi, key_image)
            v = _jax_tower(params["text"], xt, key_text)
            return jax_soft_contrastive(u, v, s, t, y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        params, opt_state = update(grads, opt_state, params)
        return params, opt_state, loss

    state = {"params": params, "opt": opt_state, "global": 0}

    def epoch(number):
        order = jnp.asarray(np.random.default_rng([SEED, number]).permutation(cfg["pairs"])
                            .astype(np.int32))
        losses = []
        for step in range(steps):
            state["params"], state["opt"], loss = train_step(
                state["params"], state["opt"], order, step, state["global"])
            state["global"] += 1
            losses.append(loss)
        return float(jnp.mean(jnp.stack(losses)))  # the one host sync of the epoch

    times, losses = _timed_epochs(epoch, cfg["epochs"])
    return {"epoch_s": times[1:], "warmup_s": times[0], "loss": losses, "check": check,
            "optimizer": optimizer_name, "device": str(jax.devices()[0]),
            "precision": _precision("jax"),
            "threads": _threads_jax(),
            "tensorflow_imported": _tensorflow_imported()}


def worker_matmul(cfg):
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
        result["numpy_threads"] = _threads_numpy()
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
    result["torch_threads"] = _threads_torch()
    if device.type == "cuda":
        result["gpu"] = torch.cuda.get_device_name()
        result["torch_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
    return result


WORKERS = {"keras": worker_keras, "torch-eager": worker_torch_eager,
           "jax-jit": worker_jax_jit, "matmul": worker_matmul}


def _block_tensorflow():
    """Make tensorflow look absent: `import tensorflow` fails, importlib's find_spec says None."""
    sys.modules["tensorflow"] = None


def _tensorflow_imported():
    return sys.modules.get("tensorflow") is not None


def worker_main(kind, cfg_json, out):
    cfg = json.loads(cfg_json)
    sys.path.insert(0, ROOT)
    if cfg.get("block_tensorflow"):
        _block_tensorflow()
    try:
        result = WORKERS[kind](cfg)
    except BaseException as error:  # report, do not hang the parent
        import traceback

        result = {"error": f"{type(error).__name__}: {error}",
                  "traceback": traceback.format_exc()[-3000:]}
    with open(out, "w") as f:
        json.dump(result, f)


# ---------------------------------------------------------------------------------------------
# Parent: run the workers one after the other, print the table
# ---------------------------------------------------------------------------------------------

def run_worker(kind, cfg, env=None, timeout=None):
    """Runs one worker in a fresh Python process; returns its result dict."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        command = [sys.executable, os.path.abspath(__file__), "--worker", kind,
                   "--worker-config", json.dumps(cfg), "--worker-out", out]
        full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
        try:
            proc = subprocess.run(command, env=full_env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout} s"}
        if not os.path.exists(out):
            return {"error": f"worker exited with {proc.returncode}",
                    "stderr": proc.stderr[-3000:]}
        with open(out) as f:
            result = json.load(f)
        if "error" in result:
            result["stderr"] = proc.stderr[-2000:]
        return result


def versions():
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("keras", "tensorflow", "jax", "jaxlib", "torch", "optax"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def header(extra=()):
    sys.path.insert(0, HERE)
    import evaluation  # the CPU, BLAS and environment lines of the evaluation benchmark

    lines = [line for line in evaluation.header() if not line.startswith(("keras", "BLAS env"))]
    lines.append(", ".join(f"{k} {v}" for k, v in versions().items()))
    env = {k: os.environ[k] for k in sorted(os.environ) if k.startswith(
        ("OPENBLAS", "OMP_", "MKL", "XLA_", "TF_NUM", "TF_INTRA", "TF_INTER", "KERAS_BACKEND",
         "JAX_", "CUDA_VISIBLE"))}
    lines.append(f"thread/env settings: {env or 'none (framework defaults: all cores)'}")
    lines.extend(extra)
    return lines


def method_rows(args):
    """(label, worker kind, backend, env, cfg overrides) of every method to run."""
    rows = []
    if not args.skip_baselines:
        rows.append(("torch-eager", "torch-eager", "torch", {"KERAS_BACKEND": "torch"}, {}))
        rows.append(("jax-jit", "jax-jit", "jax", {"KERAS_BACKEND": "jax"}, {}))
    for backend in args.backends.split(","):
        env = {"KERAS_BACKEND": backend}
        if backend == "tensorflow":
            if args.tf_jit in ("auto", "both"):
                rows.append(("keras-cmr[tensorflow]", "keras", backend, env,
                             {"jit_compile": "auto"}))
            if args.tf_jit in ("xla", "both"):
                rows.append(("keras-cmr[tensorflow,xla]", "keras", backend, env,
                             {"jit_compile": True}))
        elif backend == "jax":
            rows.append(("keras-cmr[jax]", "keras", backend, env, {"jit_compile": "auto"}))
        elif backend == "torch":
            rows.append(("keras-cmr[torch]", "keras", backend, env, {"jit_compile": "auto"}))
            if args.torch_compile:
                rows.append(("keras-cmr[torch,compile]", "keras", backend, env,
                             {"jit_compile": True}))
        elif backend:
            raise SystemExit(f"unknown backend {backend!r}")
    return rows


def run_all(args, cfg, rows, matmul_env=None, log=print):
    """Runs the matmul probe (before and after the methods) and every row.

    Returns (peak GFLOP/s, matmul results, records); the peak is the best rate seen.
    """
    log(f"matmul probe ({len(step_matmuls(cfg))} matmuls of the step) ...")
    probes = [run_worker("matmul", cfg, env=matmul_env)]
    records = []
    with tempfile.TemporaryDirectory() as data_dir:
        # The data are drawn once here; every worker loads the same arrays.
        for name, array in zip(("image", "text", "labels"), make_data(cfg)):
            np.save(os.path.join(data_dir, f"{name}.npy"), array)
        for label, kind, backend, env, overrides in rows:
            log(f"running {label} ...")
            start = time.perf_counter()
            result = run_worker(kind, {**cfg, **overrides, "data_dir": data_dir}, env=env,
                                timeout=args.timeout)
            result.update(method=label, backend=backend, wall_s=time.perf_counter() - start)
            if "error" in result:
                log(f"  ERROR {result['error']}\n{result.get('traceback', '')}"
                    f"{result.get('stderr', '')[-1500:]}")
            records.append(result)
    log("matmul probe again ...")
    probes.append(run_worker("matmul", cfg, env=matmul_env))
    matmul = dict(probes[0])
    for probe in probes[1:]:
        for key, value in probe.items():
            if isinstance(value, float):
                matmul[key] = max(value, matmul.get(key, 0.0))
    matmul["probes"] = probes
    rates = [v for v in matmul.values() if isinstance(v, float)]
    return (max(rates) if rates else float("nan")), matmul, records


def summarize(records, cfg, peak):
    """Adds pairs/s, GFLOP/s, % of peak and x torch-eager to each record (best timed epoch)."""
    for r in records:
        if "error" in r:
            continue
        if r.get("fit_input") == "arrays":  # every pair, the last batch partial
            pairs = cfg["pairs"]
        else:
            pairs = steps_per_epoch(cfg) * cfg["batch_size"]
        flops = step_flops(cfg) * pairs / cfg["batch_size"]  # pro rata for a partial batch
        r["pairs_per_epoch"] = pairs
        r["epoch_best_s"] = min(r["epoch_s"])
        r["epoch_median_s"] = statistics.median(r["epoch_s"])
        r["pairs_per_s"] = pairs / r["epoch_best_s"]
        r["gflops"] = flops / r["epoch_best_s"] / 1e9
        r["pct_of_matmul_peak"] = 100.0 * r["gflops"] / peak
    base = next((r for r in records if r["method"] == "torch-eager" and "pairs_per_s" in r), None)
    for r in records:
        if base is not None and "pairs_per_s" in r:
            r["x_torch_eager"] = r["pairs_per_s"] / base["pairs_per_s"]
    return records


def format_table(records):
    cols = (f"{'method':<26} | {'backend':<10} | {'pairs/s':>9} | {'epoch s':>8} | "
            f"{'x torch-eager':>13} | {'GFLOP/s':>8} | {'% of matmul peak':>16} | notes")
    lines = [cols, "-" * (len(cols) + 30)]
    for r in records:
        if "error" in r:
            lines.append(f"{r['method']:<26} | {r['backend']:<10} | ERROR {r['error'][:150]}")
            continue
        notes = []
        if "jit_compile_resolved" in r:
            notes.append(f"jit_compile={r['jit_compile_requested']}->"
                         f"{r['jit_compile_resolved']}")
            if r["steps_per_execution"] != 1:
                notes.append(f"spe={r['steps_per_execution']}")
            if r["fit_input"] != "pairbatches" or r["verbose"]:
                notes.append(f"input={r['fit_input']} verbose={r['verbose']}")
            if r.get("traces_per_epoch") is not None:
                notes.append(f"traces/epoch={r['traces_per_epoch'][1:]}")
            if r.get("compiles_per_epoch") is not None:
                what = "xla compiles" if r["backend"] == "jax" else "dynamo graphs"
                notes.append(f"{what}/epoch={r['compiles_per_epoch'][1:]}")
        if "optimizer" in r:
            notes.append(r["optimizer"])
        notes.append(f"warm-up {r['warmup_s']:.1f} s")
        ratio = r.get("x_torch_eager")
        lines.append(
            f"{r['method']:<26} | {r['backend']:<10} | {r['pairs_per_s']:>9.0f} | "
            f"{r['epoch_best_s']:>8.3f} | {'-' if ratio is None else f'{ratio:.2f}':>13} | "
            f"{r['gflops']:>8.1f} | {r['pct_of_matmul_peak']:>15.1f}% | {'; '.join(notes)}")
    return lines


def target_lines(records):
    lines = []
    for r in records:
        goal = TARGETS.get(r["method"])
        if goal is None or "x_torch_eager" not in r:
            continue
        verdict = "PASS" if r["x_torch_eager"] >= goal else "MISS"
        lines.append(f"{verdict}: {r['method']} pairs/s >= {goal:g}x torch-eager "
                     f"(measured {r['x_torch_eager']:.2f}x)")
    return lines


def parse_args(argv=None, description=None):
    ap = argparse.ArgumentParser(description=description or __doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=32000)
    ap.add_argument("--batch-size", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs after 1 warm-up epoch")
    ap.add_argument("--classes", type=int, default=200)
    ap.add_argument("--dim", type=int, default=1024, help="image and text feature width")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--embedding", type=int, default=1024)
    ap.add_argument("--backends", default="tensorflow,jax,torch")
    ap.add_argument("--tf-jit", choices=("auto", "xla", "both"), default="both",
                    help='tensorflow rows: jit_compile="auto", True (XLA), or both')
    ap.add_argument("--torch-compile", action="store_true",
                    help="add keras-cmr[torch] with jit_compile=True (torch.compile)")
    ap.add_argument("--steps-per-execution", type=int, default=1)
    ap.add_argument("--fit-input", choices=("pairbatches", "arrays"), default="pairbatches",
                    help="keras-cmr input: PairBatches(drop_remainder=True), or numpy arrays "
                         "with batch_size as keras_cmr.experiment does (last batch partial)")
    ap.add_argument("--verbose", type=int, default=0,
                    help="verbose of keras-cmr's fit (1: progress bar, as keras_cmr.experiment)")
    ap.add_argument("--skip-baselines", action="store_true")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per method")
    ap.add_argument("--json", default=None)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-config", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is None:
        if args.pairs < args.batch_size or args.batch_size < 2:
            ap.error("need batch_size >= 2 and pairs >= batch_size")
        if args.epochs < 1:
            ap.error("--epochs must be >= 1")
    return args


def config(args, device="cpu"):
    return {"pairs": args.pairs, "batch_size": args.batch_size, "epochs": args.epochs,
            "classes": args.classes, "dim": args.dim, "hidden": args.hidden,
            "embedding": args.embedding, "steps_per_execution": args.steps_per_execution,
            "jit_compile": "auto", "device": device, "fit_input": args.fit_input,
            "verbose": args.verbose}


def describe(cfg, peak, matmul):
    steps = steps_per_epoch(cfg)
    rates = ", ".join(f"{k} {v:.1f}" for k, v in matmul.items() if isinstance(v, float))
    errors = [p["error"] for p in matmul.get("probes", []) if "error" in p]
    return [
        f"shapes: batch {cfg['batch_size']}, features {cfg['dim']} (image and text), towers "
        f"{cfg['dim']}->{cfg['hidden']}->{cfg['embedding']} (GELU, dropout 0.1, L2), "
        f"{cfg['classes']} classes, Adam(lr 1e-3, beta_1 0.5)",
        f"epoch: {steps} batches = {steps * cfg['batch_size']} of {cfg['pairs']} random pairs "
        f"(remainder dropped), 1 warm-up + {cfg['epochs']} timed epochs, best reported",
        f"FLOPs/step (matmuls): {step_flops(cfg) / 1e9:.3f} GFLOP; matmul peak at the step's "
        f"shapes: {peak:.1f} GFLOP/s, best of a probe before and after the methods "
        f"({rates or errors or '?'})",
    ]


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker_main(args.worker, args.worker_config, args.worker_out)
    cfg = config(args)
    for line in header():
        print(line, flush=True)
    rows = method_rows(args)
    peak, matmul, records = run_all(args, cfg, rows,
                                    log=lambda m: print(m, file=sys.stderr, flush=True))
    summarize(records, cfg, peak)
    print("\n".join(describe(cfg, peak, matmul)))
    for r in records:
        if "check" in r:
            c = r["check"]
            print(f"check {r['method']}: loss max |diff| vs keras_cmr.soft_contrastive "
                  f"{c['loss_max_abs_diff']:.1e}, tower max |diff| vs ProjectionTower "
                  f"{c['tower_max_abs_diff']:.1e} (<= 1e-5)")
        if "threads" in r:
            print(f"threads {r['method']}: {r['threads']}")
    print()
    print("\n".join(format_table(records)))
    print()
    print("\n".join(target_lines(records)) or "targets: torch-eager baseline not run")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header(), "config": cfg, "step_gflop": step_flops(cfg) / 1e9,
                       "matmul": matmul, "matmul_peak_gflops": peak, "results": records,
                       "targets": target_lines(records)}, f, indent=2)


if __name__ == "__main__":
    main()
