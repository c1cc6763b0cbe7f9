"""Class-wise losses against independent loop implementations."""

import math

import numpy as np
import pytest
from keras import ops

from keras_cmr.losses import (GeneralizedCrossEntropy, SymmetricCrossEntropy,
                              class_wise_cross_entropy, generalized_cross_entropy,
                              label_regression, prototype_contrastive, symmetric_cross_entropy)

# The sizes of every loss test file: JAX compiles each eager op once per shape.
N, C, E = 6, 4, 4
CLASS_LABELS = np.array([0, 1, 0, 3, 1, 2])
MULTI_HOT = np.array([[1, 0, 0, 1], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0],
                      [1, 0, 1, 1], [0, 1, 0, 0]])
LABELS = {"classes": CLASS_LABELS, "multi_hot": MULTI_HOT}


# ----- the reference: scalar loops on Python floats ---------------------------------------------

def label_vector(labels, i):
    if labels.ndim == 1:
        return [1.0 if c == labels[i] else 0.0 for c in range(C)]
    return [float(x > 0) for x in labels[i]]


def ce(labels, i, logits):
    targets = label_vector(labels, i)
    count = sum(targets)
    top = max(float(x) for x in logits)
    log_z = top + math.log(sum(math.exp(float(x) - top) for x in logits))
    return -sum(t / count * (float(z) - log_z) for t, z in zip(targets, logits)) if count else 0.0


def ref_cross_entropy(labels, a, b):
    return np.array([ce(labels, i, a[i]) + ce(labels, i, b[i]) for i in range(len(a))])


def ref_prototype(labels, u, v, prototypes):
    units = [[float(x) / math.sqrt(sum(float(y) ** 2 for y in p)) for x in p] for p in prototypes]

    def logits(e):
        return [-sum((float(x) - y) ** 2 for x, y in zip(e, p)) for p in units]

    return np.array([ce(labels, i, logits(u[i])) + ce(labels, i, logits(v[i]))
                     for i in range(len(u))])


def ref_regression(labels, p, q):
    out = []
    for i in range(len(p)):
        y = label_vector(labels, i)
        out.append(sum(math.sqrt(sum((float(x) - t) ** 2 for x, t in zip(pred[i], y)))
                       for pred in (p, q)))
    return np.array(out)


# ----- tests -----------------------------------------------------------------------------------

def assert_matches(got, expected):
    got = ops.convert_to_numpy(got)
    assert got.shape == (N,) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("labels", ["classes", "multi_hot"])
@pytest.mark.parametrize("scale", [1.0, 16.0])
def test_cross_entropy_matches_reference(rng, labels, scale):
    a, b = (scale * rng.normal(size=(N, C)).astype("float32") for _ in range(2))
    assert_matches(class_wise_cross_entropy(a, b, labels=LABELS[labels]),
                   ref_cross_entropy(LABELS[labels], a, b))


@pytest.mark.parametrize("labels", ["classes", "multi_hot"])
def test_prototype_contrastive_matches_reference(rng, labels):
    u, v = (rng.normal(size=(N, E)).astype("float32") for _ in range(2))
    prototypes = rng.normal(size=(C, E)).astype("float32")
    assert_matches(prototype_contrastive(u, v, prototypes, labels=LABELS[labels]),
                   ref_prototype(LABELS[labels], u, v, prototypes))


@pytest.mark.parametrize("labels", ["classes", "multi_hot"])
def test_label_regression_matches_reference(rng, labels):
    p, q = (rng.normal(size=(N, C)).astype("float32") for _ in range(2))
    assert_matches(label_regression(p, q, labels=LABELS[labels]),
                   ref_regression(LABELS[labels], p, q))


def test_float_and_column_class_labels(rng):
    a, b = (rng.normal(size=(N, C)).astype("float32") for _ in range(2))
    expected = ops.convert_to_numpy(class_wise_cross_entropy(a, b, labels=CLASS_LABELS))
    for labels in (CLASS_LABELS.astype("float32"), CLASS_LABELS[:, None]):
        np.testing.assert_allclose(
            ops.convert_to_numpy(class_wise_cross_entropy(a, b, labels=labels)), expected, rtol=1e-6)


def test_hand_derived_values():
    # Uniform logits over C classes: log C per tower; a perfect prediction regresses to 0.
    zeros = np.zeros((2, C), "float32")
    np.testing.assert_allclose(
        ops.convert_to_numpy(class_wise_cross_entropy(zeros, zeros, labels=np.array([0, 3]))),
        [2 * math.log(C)] * 2, rtol=1e-6)
    one_hot = np.eye(C, dtype="float32")[[0, 3]]
    np.testing.assert_allclose(
        ops.convert_to_numpy(label_regression(one_hot, zeros, labels=np.array([0, 3]))), [1.0, 1.0],
        rtol=1e-6)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda a: class_wise_cross_entropy(a, a[:, :3], labels=CLASS_LABELS), "number of classes"),
        (lambda a: class_wise_cross_entropy(a, a, labels=MULTI_HOT[:, :3]), "classes"),
        (lambda a: class_wise_cross_entropy(a, a, labels=CLASS_LABELS[:4]), "labels: 4"),
        (lambda a: label_regression(a[:5], a, labels=CLASS_LABELS), "image_predictions: 5"),
        (lambda a: label_regression(a[0], a, labels=CLASS_LABELS), "rank 2"),
        (lambda a: prototype_contrastive(a, a, a[0], labels=CLASS_LABELS), "prototypes"),
        (lambda a: prototype_contrastive(a, a, a[:, :3], labels=CLASS_LABELS), "embedding size"),
    ],
)
def test_bad_arguments_raise(rng, call, match):
    with pytest.raises(ValueError, match=match):
        call(rng.normal(size=(N, C)).astype("float32"))


def reference_gce(image_logits, text_logits, labels, q):
    """Explicit loops: sum over modalities of (1 - p^q) / q, p the label set's probability."""
    out = []
    for i in range(len(labels)):
        total = 0.0
        for logits in (image_logits, text_logits):
            exps = [math.exp(value - max(logits[i])) for value in logits[i]]
            probabilities = [e / sum(exps) for e in exps]
            if np.ndim(labels[i]) == 0:
                p = probabilities[int(labels[i])]
            else:
                count = sum(labels[i])
                if count == 0:
                    continue
                p = sum(probabilities[c] / count for c in range(len(labels[i])) if labels[i][c])
            total += (1.0 - p ** q) / q
        out.append(total)
    return np.array(out)


@pytest.mark.parametrize("q", [1.0, 0.7, 0.3])
def test_generalized_cross_entropy_matches_reference(rng, q):
    a, b = rng.normal(size=(2, 6, 4)) * 3
    classes = rng.integers(0, 4, size=6)
    multi = (rng.random((6, 4)) < 0.4).astype("float32")
    multi[0] = 0  # an empty label set counts 0
    for labels in (classes, multi):
        got = ops.convert_to_numpy(generalized_cross_entropy(a, b, labels=labels, q=q))
        np.testing.assert_allclose(got, reference_gce(a, b, labels, q), rtol=1e-5, atol=1e-6)


def test_generalized_cross_entropy_tends_to_the_cross_entropy_and_pulls_wrong_labels_less():
    logits = np.array([[4.0, 0.0, -1.0]])
    for labels in (np.array([0]), np.array([2])):  # a confident right and a wrong label
        ce = ops.convert_to_numpy(class_wise_cross_entropy(logits, logits, labels=labels))
        near = ops.convert_to_numpy(generalized_cross_entropy(logits, logits, labels=labels,
                                                              q=1e-4))
        np.testing.assert_allclose(near, ce, rtol=1e-3)
    # q = 1: 1 - p per modality; a wrong label's loss is bounded by 1 per modality.
    wrong = ops.convert_to_numpy(generalized_cross_entropy(logits, logits, labels=[2], q=1.0))
    assert 1.9 < wrong[0] <= 2.0
    with pytest.raises(ValueError, match=r"q must be in \(0, 1\]; received q=0"):
        generalized_cross_entropy(logits, logits, labels=[0], q=0)
    with pytest.raises(ValueError, match=r"q must be in \(0, 1\]"):
        GeneralizedCrossEntropy(q=1.5)


def reference_sce(image_logits, text_logits, labels, alpha, beta):
    """Explicit loops: sum over modalities of alpha * CE + beta * RCE, log 0 = -4 in RCE."""
    out = []
    for i in range(len(labels)):
        if np.ndim(labels[i]) == 0:
            targets = [1.0 if c == int(labels[i]) else 0.0 for c in range(C)]
        else:
            targets = [float(x) / max(sum(labels[i]), 1) for x in labels[i]]
        total = 0.0
        for logits in (image_logits, text_logits):
            if sum(targets) == 0:
                continue
            exps = [math.exp(value - max(logits[i])) for value in logits[i]]
            probabilities = [e / sum(exps) for e in exps]
            cross = -sum(t * math.log(p) for t, p in zip(targets, probabilities) if t > 0)
            reverse = -sum(p * (math.log(t) if t > 0 else -4.0)
                           for t, p in zip(targets, probabilities))
            total += alpha * cross + beta * reverse
        out.append(total)
    return np.array(out)


@pytest.mark.parametrize("alpha, beta", [(0.1, 1.0), (1.0, 0.0), (0.0, 2.5), (6.0, 0.1)])
def test_symmetric_cross_entropy_matches_reference(rng, alpha, beta):
    a, b = rng.normal(size=(2, N, C)) * 3
    classes = rng.integers(0, C, size=N)
    multi = (rng.random((N, C)) < 0.4).astype("float32")
    multi[0] = 0  # an empty label set counts 0
    for labels in (classes, multi):
        got = ops.convert_to_numpy(symmetric_cross_entropy(a, b, labels=labels, alpha=alpha,
                                                           beta=beta))
        np.testing.assert_allclose(got, reference_sce(a, b, labels, alpha, beta), rtol=1e-5,
                                   atol=1e-6)
    default = ops.convert_to_numpy(symmetric_cross_entropy(a, b, labels=classes))
    np.testing.assert_allclose(default, reference_sce(a, b, classes, 0.1, 1.0), rtol=1e-5)


def test_the_reverse_cross_entropy_is_bounded_and_the_options_are_checked():
    logits = np.array([[4.0, 0.0, -1.0]])
    # RCE alone: 4 (1 - p_y) per modality, at most 8 for a confidently wrong label.
    wrong = ops.convert_to_numpy(symmetric_cross_entropy(logits, logits, labels=[2], alpha=0.0,
                                                         beta=1.0))
    assert 7.9 < wrong[0] <= 8.0
    ce = ops.convert_to_numpy(class_wise_cross_entropy(logits, logits, labels=[2]))
    only_ce = symmetric_cross_entropy(logits, logits, labels=[2], alpha=1.0, beta=0.0)
    np.testing.assert_allclose(ops.convert_to_numpy(only_ce), ce, rtol=1e-6)
    with pytest.raises(ValueError, match="alpha must be >= 0; received alpha=-1"):
        symmetric_cross_entropy(logits, logits, labels=[0], alpha=-1.0)
    with pytest.raises(ValueError, match="alpha \\+ beta must be > 0"):
        SymmetricCrossEntropy(alpha=0.0, beta=0.0)
