"""Pair-wise hard-label losses against independent loop implementations and hand values."""

import math

import numpy as np
import pytest
from keras import ops

from keras_cmr.losses import (
    ContrastiveLoss,
    InfoNCELoss,
    SupervisedInfoNCELoss,
    TripletLoss,
    contrastive,
    infonce,
    supervised_infonce,
    triplet,
)

# The sizes of every loss test file: JAX compiles each eager op once per shape.
N, E = 6, 4
CLASS_LABELS = np.array([0, 1, 0, 2, 1, 0])
MULTI_HOT = np.array([[1, 0, 0, 1], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0],
                      [1, 0, 1, 1], [0, 1, 0, 0]])
LABELS = {"classes": CLASS_LABELS, "multi_hot": MULTI_HOT}


# ----- the reference: scalar loops over i, j on Python floats ----------------------------------

def positive(labels, i, j):
    if labels.ndim == 1:
        return labels[i] == labels[j]
    return any(labels[i, k] > 0 and labels[j, k] > 0 for k in range(labels.shape[1]))


def cos(a, b):
    dot = sum(float(p) * float(q) for p, q in zip(a, b))
    return dot / math.sqrt(sum(float(p) ** 2 for p in a) * sum(float(q) ** 2 for q in b))


def log_softmax(values, k):
    top = max(values)
    return values[k] - top - math.log(sum(math.exp(x - top) for x in values))


def ref_contrastive(u, v, labels, margin):
    out = []
    for i in range(len(u)):
        total = 0.0
        for j in range(len(v)):
            d = math.sqrt(sum((float(p) - float(q)) ** 2 for p, q in zip(u[i], v[j])))
            total += d * d if positive(labels, i, j) else max(0.0, margin - d) ** 2
        out.append(total)
    return np.array(out)


def ref_triplet(u, v, labels, margin, mining):
    n = len(u)
    out = []
    for i in range(n):
        total = 0.0
        for scores in ([cos(u[i], v[j]) for j in range(n)], [cos(u[j], v[i]) for j in range(n)]):
            hinges = [max(0.0, margin - cos(u[i], v[i]) + scores[j]) for j in range(n)
                      if j != i and (labels is None or not positive(labels, i, j))]
            if hinges:
                total += max(hinges) if mining == "hardest" else sum(hinges)
        out.append(total)
    return np.array(out)


def ref_symmetric_ce(u, v, temperature, is_positive):
    n = len(u)
    out = []
    for i in range(n):
        value = 0.0
        for transposed in (False, True):
            pairs = [(j, i) if transposed else (i, j) for j in range(n)]
            logits = [cos(u[a], v[b]) / temperature for a, b in pairs]
            targets = [1.0 if is_positive(a, b) else 0.0 for a, b in pairs]
            if sum(targets):
                value -= 0.5 * sum(t / sum(targets) * log_softmax(logits, j)
                                   for j, t in enumerate(targets))
        out.append(value)
    return np.array(out)


# ----- tests -----------------------------------------------------------------------------------

@pytest.fixture
def embeddings(rng):
    return tuple(rng.normal(size=(N, E)).astype("float32") for _ in range(2))


def assert_matches(got, expected):
    got = ops.convert_to_numpy(got)
    assert got.shape == (N,) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("labels", ["classes", "multi_hot"])
@pytest.mark.parametrize("margin", [0.5, 2.0])
def test_contrastive_matches_reference(embeddings, labels, margin):
    u, v = embeddings
    assert_matches(contrastive(u, v, LABELS[labels], margin=margin),
                   ref_contrastive(u, v, LABELS[labels], margin))


@pytest.mark.parametrize("labels", [None, "classes", "multi_hot"])
@pytest.mark.parametrize("mining", ["hardest", "all"])
@pytest.mark.parametrize("margin", [0.2, 1.5])
def test_triplet_matches_reference(embeddings, labels, mining, margin):
    u, v = embeddings
    labels = None if labels is None else LABELS[labels]
    assert_matches(triplet(u, v, labels, margin=margin, mining=mining),
                   ref_triplet(u, v, labels, margin, mining))


@pytest.mark.parametrize("temperature", [0.07, 1.0])
def test_infonce_matches_reference(embeddings, temperature):
    u, v = embeddings
    assert_matches(infonce(u, v, temperature=temperature),
                   ref_symmetric_ce(u, v, temperature, lambda a, b: a == b))


@pytest.mark.parametrize("labels", ["classes", "multi_hot"])
@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_supervised_infonce_matches_reference(embeddings, labels, temperature):
    u, v = embeddings
    labels = LABELS[labels]
    assert_matches(supervised_infonce(u, v, labels, temperature=temperature),
                   ref_symmetric_ce(u, v, temperature, lambda a, b: positive(labels, a, b)))


def test_hand_derived_values():
    eye = np.eye(2, dtype="float32")
    swapped = eye[::-1].copy()
    # S = [[0, 1], [1, 0]]: each positive scores 0 and each negative 1, so 2 * (0.2 + 1).
    np.testing.assert_allclose(ops.convert_to_numpy(triplet(eye, swapped)), [2.4, 2.4],
                               rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(triplet(eye, eye)), [0.0, 0.0])
    # logits = I / 1: -log(e / (e + 1)) in both directions.
    expected = math.log(math.e + 1) - 1
    np.testing.assert_allclose(ops.convert_to_numpy(infonce(eye, eye, temperature=1.0)),
                               [expected, expected], rtol=1e-6)
    # d = [[0, sqrt2], [sqrt2, 0]], different classes, margin 2: (2 - sqrt2)^2 per anchor.
    np.testing.assert_allclose(
        ops.convert_to_numpy(contrastive(eye, eye, np.array([0, 1]), margin=2.0)),
        [(2 - math.sqrt(2)) ** 2] * 2, rtol=1e-5)


def test_supervised_infonce_reduces_to_infonce_with_distinct_classes(embeddings):
    u, v = embeddings
    np.testing.assert_allclose(
        ops.convert_to_numpy(supervised_infonce(u, v, np.arange(N), temperature=0.3)),
        ops.convert_to_numpy(infonce(u, v, temperature=0.3)), rtol=1e-6)


def test_triplet_same_class_items_are_not_negatives():
    # Image 0's nearest other text shares its class: ignored with labels, hardest without.
    u = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], "float32")
    v = np.array([[1.0, 0.1], [1.0, 0.0], [0.0, -1.0]], "float32")
    labels = np.array([0, 0, 1])
    with_labels = ops.convert_to_numpy(triplet(u, v, labels, margin=0.2))
    without = ops.convert_to_numpy(triplet(u, v, None, margin=0.2))
    assert with_labels[0] < without[0]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda u, v: contrastive(u, v, CLASS_LABELS, margin=-1.0), "margin"),
        (lambda u, v: triplet(u, v, margin=-0.1), "margin"),
        (lambda u, v: triplet(u, v, mining="semi-hard"), "mining"),
        (lambda u, v: infonce(u, v, temperature=0.0), "temperature"),
        (lambda u, v: supervised_infonce(u, v, CLASS_LABELS, temperature=-1.0), "temperature"),
        (lambda u, v: infonce(u, v[:5]), "text_embeddings: 5"),
        (lambda u, v: contrastive(u, v, CLASS_LABELS[:4]), "labels: 4"),
        (lambda u, v: triplet(u[0], v), "rank 2"),
        (lambda u, v: infonce(u, v[:, :3]), "same embedding size"),
        (lambda u, v: contrastive(u, v, CLASS_LABELS[:, None, None]), "labels"),
    ],
)
def test_bad_arguments_raise(embeddings, call, match):
    with pytest.raises(ValueError, match=match):
        call(*embeddings)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: ContrastiveLoss(margin=-1.0), "margin"),
        (lambda: TripletLoss(mining="semi-hard"), "mining"),
        (lambda: InfoNCELoss(temperature=0.0), "temperature"),
        (lambda: SupervisedInfoNCELoss(temperature=-0.5), "temperature"),
    ],
)
def test_bad_class_options_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()
