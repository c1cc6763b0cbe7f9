"""Property-based tests of every public loss over random shapes, values, labels and options.

For every drawn batch each loss must return float32 values of shape (n,), all finite and equal
to an independent float64 numpy reference written from the docstrings. The strategies include
the degenerate batches: identical embeddings (every row one point, or u_i = v_i), all rows one
class, rows without positives (multi-hot with empty label sets), and features scaled by 1e-8
and 1e8; at those scales the gradients must be finite too (test_numerics checks the gradients
of the other degenerate cases), and the reference is evaluated at the scaled inputs, so what
the docstrings normalise (cosines, source embeddings, prototypes, relative distances) must not
move with the scale.

Cost: JAX compiles every eager op once per shape, seconds per new batch size for all the
losses together, so the shapes come from a small pool (the other loss tests' (6, 4) and
test_numerics' (2, 4), already compiled in a full run) and each test draws a few examples.
`derandomize=True` draws the same examples on every run.
"""

import keras
import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from keras import ops
from scipy.special import log_softmax, softmax

from keras_cmr import losses

# The shape pool: batch sizes n and feature sizes d; d is also the number of classes C of the
# class-wise losses, so logits, label predictions and prototypes (C, E) share one size.
BATCH_SIZES = (2, 6)
DIMS = (4,)
SCALES = (1e-8, 1e8)


def examples(count):
    """`count` examples, the same on every run, no example database, no shrinking (a failure
    shows its example unshrunk: the batches are small, and shrinking would compile JAX ops for
    every smaller shape it tries)."""
    return settings(max_examples=count, deadline=None, derandomize=True, database=None,
                    phases=[Phase.explicit, Phase.generate])


# ----- the references: float64 numpy, from the docstrings --------------------------------------

def unit(x):
    """Rows divided by their norm; a zero row stays 0 (cosine 0 with everything)."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def cosine(a, b):
    return unit(a) @ unit(b).T


def squared_distances(a, b):
    return np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)


def label_sets(labels):
    """(n, C') 0/1 membership: one-hot class ids or the multi-hot labels."""
    labels = np.asarray(labels)
    if labels.ndim == 1:
        return np.eye(int(labels.max()) + 1)[labels]
    return (labels > 0).astype(np.float64)


def same_class(labels):
    """y_ij = 1 when i and j share a class (multi-hot: at least one label)."""
    hot = label_sets(labels)
    return (hot @ hot.T > 0).astype(np.float64)


def jaccard(labels):
    """soft_contrastive's y_ij: equal classes, or |A & B| / |A | B| (0 for two empty sets)."""
    hot = label_sets(labels)
    shared = hot @ hot.T
    union = hot.sum(1)[:, None] + hot.sum(1)[None, :] - shared
    return np.divide(shared, union, out=np.zeros_like(shared), where=union > 0)


def row_normalised(y, axis):
    """y / sum of y along `axis`; all-zero lines stay 0."""
    total = y.sum(axis=axis, keepdims=True)
    return np.divide(y, total, out=np.zeros_like(y), where=total > 0)


def cross_entropy(targets, logits, axis):
    return -np.sum(targets * log_softmax(logits, axis=axis), axis=axis)


def class_targets(labels, num_classes, normalise):
    labels = np.asarray(labels)
    hot = np.eye(num_classes)[labels] if labels.ndim == 1 else (labels > 0).astype(np.float64)
    return row_normalised(hot, 1) if normalise else hot


# The float32 error of the distance-based losses: they compute ||a_i - b_j||^2 as
# ||a_i||^2 + ||b_j||^2 - 2 a_i.b_j, whose rounding error is a few ulps of the norms however
# small the distance, so coincident points get distances ~1e-3 * ||a|| instead of 0. Their
# references also return a first-order bound on what this rounding moves each value: inf where
# the definition itself is ill-conditioned in float32 (relative distances of a row whose
# distances are all rounding noise; sigma="median" when the source embeddings all coincide).
EPS32 = float(np.finfo(np.float32).eps)


def expansion_error(a, b):
    """A bound on the float32 error of each ||a_i - b_j||^2 computed by the expansion."""
    norms_a, norms_b = np.sum(a * a, axis=1), np.sum(b * b, axis=1)
    return (a.shape[1] + 2) * EPS32 * (norms_a[:, None] + norms_b[None, :])


def distances_with_error(a, b):
    """(||a_i - b_j||, a bound on its float32 error)."""
    d, squared_error = np.sqrt(squared_distances(a, b)), expansion_error(a, b)
    by_ratio = np.divide(squared_error, d, out=np.full_like(d, np.inf), where=d > 0)
    return d, np.minimum(np.sqrt(squared_error), by_ratio)


def ref_soft_contrastive(u, v, s, t, labels, sigma=1.0, delta=1.0, margin="relaxed",
                         relative_distance=True, label_mix=0.5, intra_modal_weight=0.0,
                         form="margin", temperature=0.1, source_temperature=0.1,
                         label_weights="relaxed"):
    """(per-anchor values, float32 error bound) of soft_contrastive; s = t = None: no source."""
    y = None if labels is None else jaccard(labels)
    sigma_error = 0.0
    if s is not None:
        s, t = unit(s), unit(t)
        if sigma == "median":
            sigma = max(float(np.median(squared_distances(s, t))), 1e-6)
            sigma_error = float(np.max(expansion_error(s, t)))

    def block(sa, sb, a, b):
        if sa is None:
            w, w_error = label_mix * y, 0.0
        else:
            squared = squared_distances(sa, sb)
            w = np.exp(-squared / sigma)
            w_error = (1 - label_mix) * w * (expansion_error(sa, sb)
                                             + squared * sigma_error / sigma) / sigma
            if label_mix > 0:
                w = label_mix * y + (1 - label_mix) * w
        m = delta * (1 - w) if margin == "relaxed" else np.full_like(w, delta)
        if form == "margin":
            d, d_error = distances_with_error(a, b)
            if relative_distance:
                mean = d.mean(axis=1, keepdims=True)
                mean_error = d_error.mean(axis=1, keepdims=True)
                d = np.divide(d, mean, out=np.zeros_like(d), where=mean > 0)
                d_error = np.divide(d_error + d * mean_error, mean,
                                    out=np.where(d_error > 0, np.inf, 0.0), where=mean > 0)
            pull = y if label_weights == "hard" else w
            value = np.sum(pull * d**2 + (1 - pull) * np.maximum(m - d, 0) ** 2, axis=1)
            # Per term: |dT/dd| <= 2 (d + delta) and |dT/dw| <= d^2 + 3 delta^2.
            error = np.sum(2 * (d + delta + d_error) * d_error
                           + (d**2 + 3 * delta**2) * w_error, axis=1)
            return value, error
        logits = (cosine(a, b) - m) / temperature
        logits_error = (delta if margin == "relaxed" else 0.0) * w_error / temperature + 0 * w
        source = cosine(sa, sb) / source_temperature
        value = error = 0.0
        for axis in (1, 0):  # 1: a_i ranks every b_j; 0: b_i ranks every a_j
            if label_weights == "hard":
                q = row_normalised(y, axis)
            else:
                q = softmax(source, axis=axis)
                if label_mix > 0:
                    q = label_mix * row_normalised(y, axis) + (1 - label_mix) * q
            value = value + 0.5 * cross_entropy(q, logits, axis)
            # A cross-entropy with targets summing to <= 1 moves by <= 2 max |d logit|.
            error = error + np.max(logits_error, axis=axis)
        return value, error

    value, error = block(s, t, u, v)
    if intra_modal_weight > 0:
        for block_value, block_error in (block(s, s, u, u), block(t, t, v, v)):
            value = value + intra_modal_weight * block_value
            error = error + intra_modal_weight * block_error
    return value, error


def ref_contrastive(u, v, labels, margin=1.0):
    y = same_class(labels)
    d, d_error = distances_with_error(u, v)
    value = np.sum(y * d**2 + (1 - y) * np.maximum(margin - d, 0) ** 2, axis=1)
    return value, np.sum(2 * (d + margin + d_error) * d_error, axis=1)


def ref_triplet(u, v, labels=None, margin=0.2, mining="hardest"):
    similarity = cosine(u, v)
    negative = ~np.eye(len(u), dtype=bool)
    if labels is not None:
        negative &= same_class(labels) < 0.5
    value = 0.0
    for scores in (similarity, similarity.T):  # image anchors, then text anchors
        hinge = np.where(negative, np.maximum(margin - np.diag(scores)[:, None] + scores, 0), 0)
        value = value + (hinge.max(axis=1) if mining == "hardest" else hinge.sum(axis=1))
    return value


def ref_symmetric_ce(u, v, y, temperature):
    logits = cosine(u, v) / temperature
    return 0.5 * sum(cross_entropy(row_normalised(y, axis), logits, axis) for axis in (1, 0))


def ref_infonce(u, v, temperature=0.07):
    return ref_symmetric_ce(u, v, np.eye(len(u)), temperature)


def ref_supervised_infonce(u, v, labels, temperature=0.1):
    return ref_symmetric_ce(u, v, same_class(labels), temperature)


def ref_class_wise_cross_entropy(labels, a, b):
    targets = class_targets(labels, a.shape[1], normalise=True)
    return cross_entropy(targets, a, 1) + cross_entropy(targets, b, 1)


def ref_prototype_contrastive(labels, u, v, prototypes):
    p = unit(prototypes)
    value = ref_class_wise_cross_entropy(labels, -squared_distances(u, p),
                                         -squared_distances(v, p))
    # The logits are expanded squared distances; a cross-entropy moves by <= 2 max |d logit|.
    return value, 2 * sum(np.max(expansion_error(x, p), axis=1) for x in (u, v))


def ref_label_regression(labels, p, q):
    targets = class_targets(labels, p.shape[1], normalise=False)
    return np.linalg.norm(p - targets, axis=1) + np.linalg.norm(q - targets, axis=1)


def ref_dscmr(labels, u, v, p, q, alpha=1e-3, beta=0.1):
    y = same_class(labels)
    likelihood = 0.0
    for a, b in ((u, u), (v, v), (u, v)):
        theta = 0.5 * cosine(a, b)
        likelihood = likelihood + np.mean(np.logaddexp(0, theta) - y * theta, axis=1)
    return (ref_label_regression(labels, p, q) + alpha * likelihood
            + beta * np.linalg.norm(u - v, axis=1))


# ----- the losses under test -------------------------------------------------------------------

class Spec:
    """A loss under test.

    arrays: the number of float inputs (all differentiated); call and reference: both
    f(*float inputs, labels, options); options: their strategy; labels: "any" (class ids or
    multi-hot), "classes" (ids below d, the class-wise losses' C, or multi-hot with d columns)
    or "optional" (may be None); prototypes: the index of the (C, E) = (d, d) input, if any;
    magnitude: the size of the intermediate values (logits) behind the values, where it can
    exceed theirs, for the float32 tolerance.
    """

    def __init__(self, arrays, call, reference, options=st.just({}), labels="any",
                 prototypes=None, magnitude=None):
        self.arrays, self.call, self.reference = arrays, call, reference
        self.options, self.labels, self.prototypes = options, labels, prototypes
        self.magnitude = magnitude or (lambda arrays: 0.0)


def largest_entry(arrays):
    return max(float(np.max(np.abs(a))) for a in arrays)


def soft_spec(options, source=True):
    if source:
        return Spec(4, lambda u, v, s, t, y, o: losses.soft_contrastive(u, v, s, t, y, **o),
                    lambda u, v, s, t, y, o: ref_soft_contrastive(u, v, s, t, y, **o), options)
    return Spec(2, lambda u, v, y, o: losses.soft_contrastive(u, v, None, None, y, **o),
                lambda u, v, y, o: ref_soft_contrastive(u, v, None, None, y, **o), options)


# The first value of each list is the one of Hypothesis' first (simplest) example.
SPECS = {
    "soft_contrastive_margin": soft_spec(st.fixed_dictionaries({
        "sigma": st.sampled_from(["median", 0.5, 2.0]),
        "delta": st.sampled_from([1.3, 0.5, 0.0]),
        "margin": st.sampled_from(["relaxed", "fixed"]),
        "relative_distance": st.sampled_from([True, False]),
        "label_mix": st.sampled_from([0.5, 1.0, 0.0]),
        "intra_modal_weight": st.sampled_from([0.3, 0.0]),
        "label_weights": st.sampled_from(["relaxed", "hard"]),
    })),
    "soft_contrastive_infonce": soft_spec(st.fixed_dictionaries({
        "form": st.just("infonce"),
        "sigma": st.sampled_from(["median", 0.5]),
        "delta": st.sampled_from([0.5, 0.0]),
        "margin": st.sampled_from(["relaxed", "fixed"]),
        "label_mix": st.sampled_from([0.5, 1.0, 0.0]),
        "intra_modal_weight": st.sampled_from([0.3, 0.0]),
        "temperature": st.sampled_from([0.1, 0.5]),
        "source_temperature": st.sampled_from([0.1, 1.0]),
        "label_weights": st.sampled_from(["relaxed", "hard"]),
    })),
    # The no-source control: both source embeddings None, w_ij = label_mix * y_ij.
    "soft_contrastive_no_source": soft_spec(st.fixed_dictionaries({
        "delta": st.sampled_from([1.3, 0.5, 0.0]),
        "margin": st.sampled_from(["relaxed", "fixed"]),
        "relative_distance": st.sampled_from([True, False]),
        "label_mix": st.sampled_from([0.5, 1.0, 0.0]),
        "intra_modal_weight": st.sampled_from([0.3, 0.0]),
    }), source=False),
    "contrastive": Spec(
        2, lambda u, v, y, o: losses.contrastive(u, v, y, **o),
        lambda u, v, y, o: ref_contrastive(u, v, y, **o),
        st.fixed_dictionaries({"margin": st.sampled_from([0.5, 2.0, 0.0])})),
    "triplet": Spec(
        2, lambda u, v, y, o: losses.triplet(u, v, y, **o),
        lambda u, v, y, o: ref_triplet(u, v, y, **o),
        st.fixed_dictionaries({"margin": st.sampled_from([0.2, 1.5, 0.0]),
                               "mining": st.sampled_from(["hardest", "all"])}),
        labels="optional"),
    "infonce": Spec(
        2, lambda u, v, y, o: losses.infonce(u, v, **o),
        lambda u, v, y, o: ref_infonce(u, v, **o),
        st.fixed_dictionaries({"temperature": st.sampled_from([0.07, 1.0])})),
    "supervised_infonce": Spec(
        2, lambda u, v, y, o: losses.supervised_infonce(u, v, y, **o),
        lambda u, v, y, o: ref_supervised_infonce(u, v, y, **o),
        st.fixed_dictionaries({"temperature": st.sampled_from([0.1, 0.5])})),
    "class_wise_cross_entropy": Spec(
        2, lambda a, b, y, o: losses.class_wise_cross_entropy(a, b, labels=y),
        lambda a, b, y, o: ref_class_wise_cross_entropy(y, a, b), labels="classes",
        magnitude=lambda x: 4 * largest_entry(x)),
    "prototype_contrastive": Spec(
        3, lambda u, v, p, y, o: losses.prototype_contrastive(u, v, p, labels=y),
        lambda u, v, p, y, o: ref_prototype_contrastive(y, u, v, p), labels="classes",
        prototypes=2, magnitude=lambda x: max(float(np.max(squared_distances(a, unit(x[2]))))
                                              for a in x[:2])),
    "label_regression": Spec(
        2, lambda p, q, y, o: losses.label_regression(p, q, labels=y),
        lambda p, q, y, o: ref_label_regression(y, p, q), labels="classes"),
    "dscmr": Spec(
        4, lambda u, v, p, q, y, o: losses.dscmr(u, v, p, q, labels=y, **o),
        lambda u, v, p, q, y, o: ref_dscmr(y, u, v, p, q, **o),
        st.fixed_dictionaries({"alpha": st.sampled_from([1.0, 1e-3, 0.0]),
                               "beta": st.sampled_from([0.1, 2.0, 0.0])}),
        labels="classes"),
}


# ----- strategies ------------------------------------------------------------------------------
#
# Hypothesis draws the structure of a batch (shape, options, label kind, value style) and a
# seed; numpy draws the numbers from the seed. So every example, Hypothesis' first and simplest
# included, is a full random batch, and a few examples per case suffice.

def random_values(rng, shape, style):
    """float32 values: "normal" N(0, 1), or "grid" entries in {-1, -1/2, 0, 1/2, 1}, which make
    zero rows, repeated rows and tied distances likely."""
    if style == "grid":
        return (rng.integers(-2, 3, shape) / 2).astype(np.float32)
    return rng.normal(size=shape).astype(np.float32)


def labels_without_positives(rng, n, d):
    """Multi-hot labels where row 0 has no label and no two rows share one: row 0 has no
    positive at all, every other row only itself (if it has a label)."""
    labels = np.zeros((n, d), np.int64)
    owners = rng.integers(0, n, d)
    labels[owners[owners > 0], np.flatnonzero(owners > 0)] = 1
    return labels


@st.composite
def batches(draw, spec, case):
    """(float inputs, labels, options) of a batch of the given case."""
    scale = float(case[len("scale "):]) if case.startswith("scale ") else None
    # The scale cases compute gradients, which JAX compiles per shape again: one shape.
    n = BATCH_SIZES[-1] if scale else draw(st.sampled_from(BATCH_SIZES))
    d = draw(st.sampled_from(DIMS))
    options = draw(spec.options)
    style = "normal" if scale else draw(st.sampled_from(["normal", "grid"]))
    multi_hot = spec.labels != "classes" and not scale and draw(st.booleans())
    classes = draw(st.sampled_from([d, 2]))
    density = draw(st.sampled_from([0.4, 0.7]))
    coincident = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))

    rows = [d if k == spec.prototypes else n for k in range(spec.arrays)]
    arrays = [random_values(rng, (r, d), style) for r in rows]
    if case == "identical" and coincident:  # u_i = v_i (s_i = t_i, p_i = q_i): pairs coincide
        arrays = [arrays[k - k % 2] if rows[k] == n else a for k, a in enumerate(arrays)]
    elif case == "identical":  # every row of every input the same point
        arrays = [np.repeat(arrays[0][:1], r, axis=0) for r in rows]
    elif scale:
        arrays = [a * np.float32(scale) for a in arrays]

    if case == "one_class":
        labels = np.full(n, draw(st.integers(0, d - 1)))
    elif case == "no_positive":
        labels = labels_without_positives(rng, n, d)
    elif multi_hot:
        labels = (rng.random((n, d)) < density).astype(np.int64)
    else:
        labels = rng.integers(0, classes, n)
    if spec.labels == "optional" and draw(st.booleans()):
        labels = None
    return arrays, labels, options


# ----- gradients, per backend ------------------------------------------------------------------

def values_and_grads(fn, arrays):
    """(fn(*arrays), its dtype, the gradients of sum(fn) with respect to every array)."""
    backend = keras.backend.backend()
    xs = [ops.convert_to_tensor(a) for a in arrays]
    if backend == "jax":
        import jax

        def total(*args):
            out = fn(*args)
            return ops.sum(out), out

        (_, out), grads = jax.value_and_grad(total, argnums=tuple(range(len(xs))),
                                             has_aux=True)(*xs)
    elif backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(xs)
            out = fn(*xs)
            total = ops.sum(out)
        grads = tape.gradient(total, xs, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    elif backend == "torch":
        import torch

        xs = [x.detach().requires_grad_(True) for x in xs]
        out = fn(*xs)
        grads = torch.autograd.grad(ops.sum(out), xs, allow_unused=True)
        grads = [torch.zeros_like(x) if g is None else g for x, g in zip(xs, grads)]
        out = out.detach()
    else:
        raise NotImplementedError(backend)
    dtype = keras.backend.standardize_dtype(out.dtype)
    return ops.convert_to_numpy(out), dtype, [ops.convert_to_numpy(g) for g in grads]


# ----- the properties --------------------------------------------------------------------------

def check_properties(name, case, batch, gradients=False):
    """Shape (n,), float32, finite, equal to the reference within float32 rounding; with
    `gradients`, finite gradients with respect to every float input too."""
    spec = SPECS[name]
    arrays, labels, options = batch
    context = f"{name}, case {case!r}, options {options}, labels {labels!r}"
    fn = lambda *x: spec.call(*x, labels, options)  # noqa: E731
    if gradients:
        got, dtype, grads = values_and_grads(fn, arrays)
        for k, grad in enumerate(grads):
            assert grad.shape == arrays[k].shape, context
            assert np.all(np.isfinite(grad)), f"{context}: gradient of input {k} {grad}"
    else:
        out = fn(*arrays)
        got, dtype = ops.convert_to_numpy(out), keras.backend.standardize_dtype(out.dtype)
    assert got.shape == (len(arrays[0]),), context
    assert dtype == "float32", context
    assert np.all(np.isfinite(got)), f"{context}: values {got}"

    arrays = [a.astype(np.float64) for a in arrays]
    expected = spec.reference(*arrays, labels, options)
    expected, error = expected if isinstance(expected, tuple) else (expected, 0.0)
    # 1e-4 of the values (or of the logits behind them), plus the expansion's rounding bound;
    # an infinite bound (an ill-conditioned value) leaves only the checks above.
    size = max(float(np.max(np.abs(expected))), spec.magnitude(arrays))
    tolerance = 1e-4 * (1.0 + size + np.abs(expected)) + error
    assert np.all(np.abs(got - expected) <= tolerance), (
        f"{context}\n got      {got}\n expected {expected}\n tolerance {tolerance}")


@pytest.mark.parametrize("name", sorted(SPECS))
@examples(6)
@given(data=st.data())
def test_random_batches_match_reference(name, data):
    batch = data.draw(batches(SPECS[name], "random"), label="batch")
    check_properties(name, "random", batch)


@pytest.mark.parametrize("case", ["identical", "one_class", "no_positive"])
@pytest.mark.parametrize("name", sorted(SPECS))
@examples(3)
@given(data=st.data())
def test_degenerate_batches_match_reference(name, case, data):
    batch = data.draw(batches(SPECS[name], case), label="batch")
    check_properties(name, case, batch)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", sorted(SPECS))
@examples(2)
@given(data=st.data())
def test_extreme_scales_finite_gradients_and_match_reference(name, scale, data):
    case = f"scale {scale:g}"
    batch = data.draw(batches(SPECS[name], case), label="batch")
    check_properties(name, case, batch, gradients=True)
