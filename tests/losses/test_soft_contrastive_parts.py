"""The parts of soft_contrastive (label/margin producer, InfoNCE targets, the two kernels)
against scalar loops written from their docstrings."""

import math

import numpy as np
import pytest
from keras import ops

from keras_cmr.losses import (
    SoftLabels,
    soft_contrastive,
    soft_contrastive_infonce,
    soft_contrastive_margin,
    soft_infonce_targets,
    soft_labels,
)

N = 6
CLASS_LABELS = np.array([0, 1, 0, 2, 1, 0])
MULTI_HOT = np.array([[1, 0, 0, 1], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0],
                      [1, 0, 1, 1], [0, 1, 0, 0]])
LABELS = {"classes": CLASS_LABELS, "multi_hot": MULTI_HOT}


@pytest.fixture
def data(rng):
    return [rng.normal(size=(N, 4)).astype("float32") for _ in range(4)]


def ref_y(labels, i, j):
    if labels.ndim == 1:
        return float(labels[i] == labels[j])
    a, b = set(np.flatnonzero(labels[i])), set(np.flatnonzero(labels[j]))
    return len(a & b) / len(a | b) if a | b else 0.0


def unit(x):
    x = [float(c) for c in x]
    norm = math.sqrt(sum(c * c for c in x))
    return [c / norm for c in x]


def sq_dist(a, b):
    return sum((float(p) - float(q)) ** 2 for p, q in zip(a, b))


def ref_relaxed(s, t, sigma, calibration, sigma_from=None):
    """exp(-z / sigma) averaged over the calibrated distances z; returns (w, sigma used)."""
    s, t = [unit(x) for x in s], [unit(x) for x in t]
    n, m = len(s), len(t)
    d = [[sq_dist(s[i], t[j]) for j in range(m)] for i in range(n)]
    if calibration == "none":
        zs = [d]
    elif calibration == "row":
        zs = [[[d[i][j] - min(d[i]) for j in range(m)] for i in range(n)],
              [[d[i][j] - min(d[k][j] for k in range(n)) for j in range(m)] for i in range(n)]]
    else:
        rank_row = [[sorted(range(m), key=lambda k: (d[i][k], k)).index(j) for j in range(m)]
                    for i in range(n)]
        rank_col = [[sorted(range(n), key=lambda k: (d[k][j], k)).index(i) for j in range(m)]
                    for i in range(n)]
        zs = [[[4.0 * r[i][j] / (n - 1) for j in range(m)] for i in range(n)]
              for r in (rank_row, rank_col)]
    if sigma == "median":
        sigma = sigma_from if sigma_from is not None else max(
            float(np.median([z for block in zs for row in block for z in row])), 1e-6)
    w = [[sum(math.exp(-z[i][j] / sigma) for z in zs) / len(zs) for j in range(m)]
         for i in range(n)]
    return np.array(w), sigma


@pytest.mark.parametrize("calibration", ["none", "row", "rank"])
@pytest.mark.parametrize("sigma", [0.7, "median"])
@pytest.mark.parametrize("label_mix,margin,labels", [(0.0, "relaxed", "classes"),
                                                     (0.6, "fixed", "multi_hot"),
                                                     (0.6, "relaxed", "classes")])
def test_soft_labels_match_the_formula(data, calibration, sigma, label_mix, margin, labels):
    _, _, s, t = data
    y = np.array([[ref_y(LABELS[labels], i, j) for j in range(N)] for i in range(N)])
    got = soft_labels(s, t, LABELS[labels], sigma=sigma, calibration=calibration,
                      label_mix=label_mix, delta=1.3, margin=margin, intra_modal=True)
    assert sorted(got) == ["image_image", "image_text", "text_text"]
    relaxed, sigma_used = ref_relaxed(s, t, sigma, calibration)
    expected = {"image_text": relaxed,
                "image_image": ref_relaxed(s, s, sigma, calibration, sigma_used)[0],
                "text_text": ref_relaxed(t, t, sigma, calibration, sigma_used)[0]}
    for block, r in expected.items():
        w = label_mix * y + (1.0 - label_mix) * r
        assert isinstance(got[block], SoftLabels)
        np.testing.assert_allclose(ops.convert_to_numpy(got[block].weights), w, rtol=1e-4,
                                   atol=1e-5)
        if margin == "fixed":
            assert got[block].margins == 1.3
        else:
            np.testing.assert_allclose(ops.convert_to_numpy(got[block].margins),
                                       1.3 * (1.0 - w), rtol=1e-4, atol=1e-5)


def test_soft_labels_without_a_source_are_the_scaled_hard_labels():
    got = soft_labels(None, None, MULTI_HOT, label_mix=0.4, delta=2.0)
    y = np.array([[ref_y(MULTI_HOT, i, j) for j in range(N)] for i in range(N)])
    np.testing.assert_allclose(ops.convert_to_numpy(got["image_text"].weights), 0.4 * y,
                               rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(got["image_text"].margins),
                               2.0 * (1.0 - 0.4 * y), rtol=1e-6)


@pytest.mark.parametrize("hard_targets,label_mix", [(False, 0.0), (False, 0.7), (True, 0.7)])
def test_infonce_targets_match_the_formula(data, hard_targets, label_mix):
    _, _, s, t = data
    y = np.array([[ref_y(CLASS_LABELS, i, j) for j in range(N)] for i in range(N)])
    c = np.array([[sum(p * q for p, q in zip(unit(s[i]), unit(t[j]))) for j in range(N)]
                  for i in range(N)]) / 0.2
    rows = np.array([[math.exp(c[i][j]) / sum(math.exp(c[i][k]) for k in range(N))
                      for j in range(N)] for i in range(N)])
    columns = np.array([[math.exp(c[i][j]) / sum(math.exp(c[k][j]) for k in range(N))
                         for j in range(N)] for i in range(N)])
    hard_rows = y / y.sum(axis=1, keepdims=True)
    hard_columns = y / y.sum(axis=0, keepdims=True)
    if hard_targets:
        expected = (hard_rows, hard_columns)
    else:
        expected = (label_mix * hard_rows + (1 - label_mix) * rows,
                    label_mix * hard_columns + (1 - label_mix) * columns)
    got = soft_infonce_targets(s, t, CLASS_LABELS, label_mix=label_mix, source_temperature=0.2,
                               hard_targets=hard_targets)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(ops.convert_to_numpy(g), e, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("relative_distance", [True, False])
@pytest.mark.parametrize("intra", [False, True])
def test_margin_kernel_matches_the_formula(data, rng, relative_distance, intra):
    u, v, _, _ = data
    b = u if intra else v
    w = rng.uniform(size=(N, N)).astype("float32")
    m = rng.uniform(0.5, 2.0, size=(N, N)).astype("float32")
    d = np.array([[math.sqrt(sq_dist(u[i], b[j])) for j in range(N)] for i in range(N)])
    if relative_distance:
        d = d / d.mean(axis=1, keepdims=True)
    expected = [sum(w[i, j] * d[i, j] ** 2 + (1 - w[i, j]) * max(0.0, m[i, j] - d[i, j]) ** 2
                    for j in range(N)) for i in range(N)]
    got = soft_contrastive_margin(u, None if intra else v, w, m,
                                  relative_distance=relative_distance)
    np.testing.assert_allclose(ops.convert_to_numpy(got), expected, rtol=1e-4, atol=1e-5)


def test_infonce_kernel_matches_the_formula(data, rng):
    u, v, _, _ = data
    q = rng.uniform(size=(N, N)).astype("float32")
    q_columns = rng.uniform(size=(N, N)).astype("float32")
    m = rng.uniform(0.0, 0.5, size=(N, N)).astype("float32")
    z = np.array([[sum(p * r for p, r in zip(unit(u[i]), unit(v[j]))) - m[i, j]
                   for j in range(N)] for i in range(N)]) / 0.3

    def log_softmax(values, k):
        top = max(values)
        return values[k] - top - math.log(sum(math.exp(x - top) for x in values))

    expected = [0.5 * (-sum(q[i, j] * log_softmax(list(z[i, :]), j) for j in range(N))
                       - sum(q_columns[j, i] * log_softmax(list(z[:, i]), j) for j in range(N)))
                for i in range(N)]
    got = soft_contrastive_infonce(u, v, (q, q_columns), m, temperature=0.3)
    np.testing.assert_allclose(ops.convert_to_numpy(got), expected, rtol=1e-4, atol=1e-5)


def test_the_no_source_control_is_the_margin_kernel_with_scaled_hard_labels(data):
    u, v, _, _ = data
    y = np.array([[ref_y(CLASS_LABELS, i, j) for j in range(N)] for i in range(N)])
    w = 0.5 * y
    expected = soft_contrastive_margin(u, v, w, 1.5 * (1.0 - w))
    got = soft_contrastive(u, v, None, None, labels=CLASS_LABELS, label_mix=0.5)
    np.testing.assert_allclose(ops.convert_to_numpy(got), ops.convert_to_numpy(expected),
                               rtol=1e-6)


@pytest.mark.parametrize("call,message", [
    (lambda s, t: soft_labels(s, None, CLASS_LABELS), "pass both"),
    (lambda s, t: soft_labels(s, t, None, label_mix=0.5), "labels are needed"),
    (lambda s, t: soft_labels(s, t, CLASS_LABELS, calibration="z"), "calibration"),
    (lambda s, t: soft_labels(s, t, CLASS_LABELS[:4]), "labels: 4"),
    (lambda s, t: soft_infonce_targets(s, t, None, hard_targets=True), "labels are needed"),
    (lambda s, t: soft_contrastive_infonce(s, t, (s, t), temperature=0.0), "temperature"),
    (lambda s, t: soft_contrastive_margin(s[0], t, s, 1.0), "rank 2"),
])
def test_parts_name_bad_input(data, call, message):
    with pytest.raises(ValueError, match=message):
        call(data[2], data[3])
