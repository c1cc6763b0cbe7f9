"""The DSCMR loss against an independent loop implementation."""

import math

import numpy as np
import pytest
from keras import ops

from keras_cmr.losses import DSCMRLoss, dscmr, label_regression

# The sizes of every loss test file: JAX compiles each eager op once per shape.
N, C, E = 6, 4, 4
CLASS_LABELS = np.array([0, 1, 0, 3, 1, 2])
MULTI_HOT = np.array([[1, 0, 0, 1], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0],
                      [1, 0, 1, 1], [0, 1, 0, 0]])
LABELS = {"classes": CLASS_LABELS, "multi_hot": MULTI_HOT}


def positive(labels, i, j):
    if labels.ndim == 1:
        return float(labels[i] == labels[j])
    return float(any(labels[i, k] > 0 and labels[j, k] > 0 for k in range(labels.shape[1])))


def cos(a, b):
    dot = sum(float(p) * float(q) for p, q in zip(a, b))
    return dot / math.sqrt(sum(float(p) ** 2 for p in a) * sum(float(q) ** 2 for q in b))


def reference(labels, u, v, p, q, alpha, beta):
    n = len(u)
    out = []
    for i in range(n):
        targets = ([1.0 if c == labels[i] else 0.0 for c in range(C)] if labels.ndim == 1
                   else [float(x > 0) for x in labels[i]])
        regression = sum(math.sqrt(sum((float(x) - t) ** 2 for x, t in zip(pred[i], targets)))
                         for pred in (p, q))
        likelihood = 0.0
        for a, b in ((u, u), (v, v), (u, v)):
            for j in range(n):
                theta = cos(a[i], b[j]) / 2
                likelihood += (math.log(1 + math.exp(theta)) - positive(labels, i, j) * theta) / n
        pair = math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(u[i], v[i])))
        out.append(regression + alpha * likelihood + beta * pair)
    return np.array(out)


@pytest.fixture
def inputs(rng):
    u, v = (rng.normal(size=(N, E)).astype("float32") for _ in range(2))
    p, q = (rng.normal(size=(N, C)).astype("float32") for _ in range(2))
    return u, v, p, q


@pytest.mark.parametrize("labels", ["classes", "multi_hot"])
@pytest.mark.parametrize("alpha, beta", [(1e-3, 0.1), (0.7, 0.0), (2.0, 1.5)])
def test_matches_reference(inputs, labels, alpha, beta):
    u, v, p, q = inputs
    labels = LABELS[labels]
    got = ops.convert_to_numpy(dscmr(u, v, p, q, labels=labels, alpha=alpha, beta=beta))
    assert got.shape == (N,) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference(labels, u, v, p, q, alpha, beta), rtol=1e-5,
                               atol=1e-5)


def test_zero_weights_leave_label_regression(inputs):
    u, v, p, q = inputs
    np.testing.assert_allclose(
        ops.convert_to_numpy(dscmr(u, v, p, q, labels=CLASS_LABELS, alpha=0.0, beta=0.0)),
        ops.convert_to_numpy(label_regression(p, q, labels=CLASS_LABELS)), rtol=1e-6)


@pytest.mark.parametrize("options, match", [({"alpha": -1.0}, "alpha"), ({"beta": -0.1}, "beta")])
def test_bad_weights_raise(inputs, options, match):
    with pytest.raises(ValueError, match=match):
        dscmr(*inputs, labels=CLASS_LABELS, **options)
    with pytest.raises(ValueError, match=match):
        DSCMRLoss(**options)


def test_bad_shapes_raise(inputs):
    u, v, p, q = inputs
    with pytest.raises(ValueError, match="text_embeddings: 5"):
        dscmr(u, v[:5], p, q, labels=CLASS_LABELS)
    with pytest.raises(ValueError, match="labels: 5"):
        dscmr(u, v, p, q, labels=CLASS_LABELS[:5])
