"""Finite losses and gradients in degenerate batches, in float16/bfloat16, and under jit."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_cmr import losses

C = E = 4  # one size, so the same arrays serve as embeddings, logits and label predictions
PROTOTYPES = np.random.default_rng(0).normal(size=(C, E)).astype("float32")

# Every loss as f(u, v, s, t, labels): u, v, s, t are differentiated, labels are not.
LOSSES = {
    "soft_margin": lambda u, v, s, t, y: losses.soft_contrastive(
        u, v, s, t, y, sigma="median", intra_modal_weight=0.3),
    "soft_margin_fixed_absolute": lambda u, v, s, t, y: losses.soft_contrastive(
        u, v, s, t, y, margin="fixed", relative_distance=False, label_mix=1.0),
    "soft_infonce": lambda u, v, s, t, y: losses.soft_contrastive(
        u, v, s, t, y, form="infonce", intra_modal_weight=0.3, sigma="median"),
    "contrastive": lambda u, v, s, t, y: losses.contrastive(u, v, y),
    "triplet_hardest": lambda u, v, s, t, y: losses.triplet(u, v, y),
    "triplet_all": lambda u, v, s, t, y: losses.triplet(u, v, None, mining="all"),
    "infonce": lambda u, v, s, t, y: losses.infonce(u, v),
    "supervised_infonce": lambda u, v, s, t, y: losses.supervised_infonce(u, v, y),
    "class_wise_cross_entropy": lambda u, v, s, t, y: losses.class_wise_cross_entropy(
        16.0 * u, 16.0 * v, labels=y),
    "prototype_contrastive": lambda u, v, s, t, y: losses.prototype_contrastive(
        u, v, PROTOTYPES, labels=y),
    "symmetric_cross_entropy": lambda u, v, s, t, y: losses.symmetric_cross_entropy(
        16.0 * u, 16.0 * v, labels=y),
    "label_regression": lambda u, v, s, t, y: losses.label_regression(s, t, labels=y),
    "dscmr": lambda u, v, s, t, y: losses.dscmr(u, v, s, t, labels=y),
}


def value_and_grads(fn, arrays, dtype="float32"):
    """(mean of fn(*arrays), gradients w.r.t. every array) with the backend's autodiff."""
    backend = keras.backend.backend()
    xs = [ops.cast(ops.convert_to_tensor(a), dtype) for a in arrays]
    if backend == "jax":
        import jax

        def scalar(*args):
            return ops.mean(fn(*args))

        value, grads = jax.value_and_grad(scalar, argnums=tuple(range(len(xs))))(*xs)
    elif backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(xs)
            value = ops.mean(fn(*xs))
        grads = tape.gradient(value, xs, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    elif backend == "torch":
        import torch

        xs = [x.detach().requires_grad_(True) for x in xs]
        value = ops.mean(fn(*xs))
        grads = torch.autograd.grad(value, xs, allow_unused=True)
        grads = [torch.zeros_like(x) if g is None else g for x, g in zip(xs, grads)]
    else:
        raise NotImplementedError(backend)
    return (ops.convert_to_numpy(value),
            [ops.convert_to_numpy(ops.cast(g, "float32")) for g in grads])


def degenerate_batch(case, rng):
    """(u, v, s, t, labels) for the degenerate cases."""
    n = 2 if case == "two_pairs" else 6
    random = [rng.normal(size=(n, E)).astype("float32") for _ in range(4)]
    labels = np.array([0, 1, 2, 0, 1, 2])[:n]
    if case == "collapsed":  # every embedding the same point: all distances 0, median 0
        return [np.tile(random[0][:1], (n, 1))] * 4 + [labels]
    if case == "coincident_pairs":  # u_i = v_i = s_i = t_i: zero distance on the diagonal
        return [random[0]] * 4 + [labels]
    if case == "exact_targets":  # embeddings and predictions equal the one-hot labels
        return [np.eye(C, dtype="float32")[labels]] * 4 + [labels]
    if case == "one_class":  # no negative anywhere
        return random + [np.zeros(n, "int64")]
    if case == "no_positive":  # multi-hot with empty label sets and no shared label
        hot = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0],
                        [0, 0, 1, 0], [0, 0, 0, 1]])
        return random + [hot]
    return random + [labels]


CASES = ["collapsed", "coincident_pairs", "exact_targets", "one_class", "no_positive"]
# n = 2 matters where a loss averages or ranks over the batch (row means, the median, hardest
# negatives); each new shape costs JAX seconds of compilation, so the others skip it.
TWO_PAIRS = ["soft_margin", "soft_infonce", "triplet_hardest", "supervised_infonce", "dscmr"]


@pytest.mark.parametrize(
    "name, case",
    [(name, case) for name in sorted(LOSSES) for case in CASES]
    + [(name, "two_pairs") for name in TWO_PAIRS],
)
def test_finite_loss_and_gradients_in_degenerate_batches(rng, name, case):
    *arrays, labels = degenerate_batch(case, rng)
    value, grads = value_and_grads(lambda *x: LOSSES[name](*x, labels), arrays)
    assert np.isfinite(value), (name, case, value)
    for grad in grads:
        assert np.all(np.isfinite(grad)), (name, case, grad)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_low_precision_inputs(rng, name, dtype):
    *arrays, labels = degenerate_batch("random", rng)
    arrays = [a / np.linalg.norm(a, axis=1, keepdims=True) for a in arrays]
    fn = LOSSES[name]
    result = fn(*[ops.cast(a, dtype) for a in arrays], labels)
    assert keras.backend.standardize_dtype(result.dtype) == "float32"
    value, grads = value_and_grads(lambda *x: fn(*x, labels), arrays, dtype=dtype)
    reference = ops.convert_to_numpy(ops.mean(fn(*arrays, labels)))
    # The inputs' rounding (3 digits in bfloat16) is the only difference.
    np.testing.assert_allclose(value, reference, rtol=0.03, atol=0.03)
    for grad in grads:
        assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("name", ["soft_margin", "contrastive", "dscmr"])
def test_float16_inputs_of_large_norm_do_not_overflow(rng, name):
    # Squared distances of norm-100 vectors reach ~4e4 per pair and sum past float16's 65504.
    *arrays, labels = degenerate_batch("random", rng)
    arrays = [100.0 * a / np.linalg.norm(a, axis=1, keepdims=True) for a in arrays]
    value, grads = value_and_grads(lambda *x: LOSSES[name](*x, labels), arrays, "float16")
    reference = ops.convert_to_numpy(ops.mean(LOSSES[name](*arrays, labels)))
    np.testing.assert_allclose(value, reference, rtol=1e-2)
    assert all(np.all(np.isfinite(g)) for g in grads)


def compiled(fn, arrays):
    """fn compiled by the backend with an unknown batch size where it can (TF), else as is."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(fn)
    if backend == "tensorflow":
        import tensorflow as tf

        signature = [tf.TensorSpec([None, *a.shape[1:]], tf.as_dtype(a.dtype)) for a in arrays]
        return tf.function(fn, input_signature=signature)
    return fn  # torch runs eagerly


def several_losses(u, v, s, t, classes, multi_hot):
    # One compiled function for several losses and both kinds of labels: each compilation
    # costs seconds.
    names = ["soft_margin", "soft_infonce", "triplet_hardest", "supervised_infonce",
             "class_wise_cross_entropy", "dscmr"]
    return ops.stack([LOSSES[name](u, v, s, t, labels)
                      for labels in (classes, multi_hot) for name in names])


def test_compiled_with_dynamic_batch_matches_eager(rng):
    *arrays, classes = degenerate_batch("random", rng)
    multi_hot = np.eye(C, dtype="float32")[classes] + np.eye(C, dtype="float32")[classes[::-1]]
    arrays += [classes.astype("float32"), multi_hot]  # labels as Keras passes them: floats
    got = ops.convert_to_numpy(compiled(several_losses, arrays)(*arrays))
    np.testing.assert_allclose(got, ops.convert_to_numpy(several_losses(*arrays)), rtol=1e-5,
                               atol=1e-6)
