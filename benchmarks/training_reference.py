"""Reference loops for benchmarks/training.py: the MET step written directly in each framework.

The Keras fit of keras-cmr is compared against two loops as research code writes them:
  torch-eager  nn.Linear/GELU/Dropout heads, the loss re-written in torch, torch.optim.Adam,
               source forward under torch.no_grad(), batches sliced from in-memory tensors,
               the loss read once per epoch;
  jax-jit      the whole step (gather, source, target, loss, grad, Adam) under one jax.jit
               with params and optimizer state donated; optax.adam if optax is installed,
               else Adam written out.
Before timing, each loop checks that its loss equals keras_cmr's `soft_contrastive` and its
tower equals `ProjectionTower` on a small random batch (max abs difference <= 1e-5).
"""

import time

import numpy as np

from training_environment import precision, tensorflow_imported, threads_jax, threads_torch
from training_problem import (ADAM, DELTA, EPSILON, LABEL_MIX, SEED, SIGMA, make_data,
                              steps_per_epoch)


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


def torch_tower_numpy(weights, x):
    import torch

    w1, b1, w2, b2 = (torch.from_numpy(np.asarray(a)) for a in weights)
    tower = torch_modules()[0](w1.shape[0], w1.shape[1], w2.shape[1])
    with torch.no_grad():
        tower.net[0].weight.copy_(w1.T)
        tower.net[0].bias.copy_(b1)
        tower.net[2].weight.copy_(w2.T)
        tower.net[2].bias.copy_(b2)
        tower.eval()
        return tower(torch.from_numpy(x)).numpy()


def torch_modules():
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


def measure_torch_eager(cfg):
    import torch

    def loss_numpy(u, v, s, t, labels):
        return torch_soft_contrastive(*(torch.from_numpy(a) for a in (u, v, s, t, labels))).numpy()

    torch.backends.cuda.matmul.allow_tf32 = False  # TF32 on a GPU would miss 1e-5
    check = verify_against_keras_cmr(loss_numpy, torch_tower_numpy)
    torch.backends.cuda.matmul.allow_tf32 = bool(cfg.get("torch_tf32"))
    device = torch.device("cuda" if cfg["device"] == "gpu" else "cpu")
    torch.manual_seed(SEED)
    _, Encoder = torch_modules()
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

    times, losses = timed_epochs(epoch, cfg["epochs"])
    return {"epoch_s": times[1:], "warmup_s": times[0], "loss": losses, "check": check,
            "threads": threads_torch(), "device": str(device), "precision": precision("torch"),
            "tensorflow_imported": tensorflow_imported()}


def timed_epochs(epoch, timed):
    times, losses = [], []
    for number in range(1 + timed):
        start = time.perf_counter()
        losses.append(epoch(number + 1))
        times.append(time.perf_counter() - start)
    return times, losses


def jax_tower(p, x, key=None, rate=0.1):
    import jax
    import jax.numpy as jnp

    z = jax.nn.gelu(x @ p["w1"] + p["b1"], approximate=False) @ p["w2"] + p["b2"]
    if key is not None:
        keep = jax.random.bernoulli(key, 1.0 - rate, z.shape)
        z = jnp.where(keep, z / (1.0 - rate), 0.0)
    return z * jax.lax.rsqrt(jnp.maximum((z * z).sum(-1, keepdims=True), 1e-12))


def adam(params):
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


def measure_jax_jit(cfg):
    import functools

    import jax
    import jax.numpy as jnp

    def tower_numpy(weights, x):
        p = dict(zip(("w1", "b1", "w2", "b2"), (jnp.asarray(a) for a in weights)))
        return np.asarray(jax_tower(p, jnp.asarray(x)))

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
    opt_state, update, optimizer_name = adam(params)
    image, text, labels = (jnp.asarray(a) for a in make_data(cfg))
    steps = steps_per_epoch(cfg)
    base_key = jax.random.key(SEED)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def train_step(params, opt_state, order, step, global_step):
        rows = jax.lax.dynamic_slice_in_dim(order, step * b, b)
        xi, xt, y = image[rows], text[rows], labels[rows]
        s = jax.lax.stop_gradient(jax_tower(source["image"], xi))
        t = jax.lax.stop_gradient(jax_tower(source["text"], xt))
        key_image, key_text = jax.random.split(jax.random.fold_in(base_key, global_step))

        def loss_fn(params):
            u = jax_tower(params["image"], xi, key_image)
            v = jax_tower(params["text"], xt, key_text)
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

    times, losses = timed_epochs(epoch, cfg["epochs"])
    return {"epoch_s": times[1:], "warmup_s": times[0], "loss": losses, "check": check,
            "optimizer": optimizer_name, "device": str(jax.devices()[0]),
            "precision": precision("jax"),
            "threads": threads_jax(),
            "tensorflow_imported": tensorflow_imported()}
