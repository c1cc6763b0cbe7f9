"""soft_contrastive against an independent loop implementation, for every option."""

import math

import numpy as np
import pytest
from keras import ops

from keras_cmr.losses import (
    SoftContrastiveLoss,
    contrastive,
    label_similarity,
    relaxed_labels,
    soft_contrastive,
)

# The sizes of every loss test file: JAX compiles each eager op once per shape.
N = 6  # pairs, as tests/losses/conftest.py's `inputs`
CLASS_LABELS = np.array([0, 1, 0, 2, 1, 0])
# Multi-hot with overlapping sets and one empty set (a row whose hard labels are all 0).
MULTI_HOT = np.array([[1, 0, 0, 1], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0],
                      [1, 0, 1, 1], [0, 1, 0, 0]])


# ----- the reference: scalar loops over i, j on Python floats, written from METHOD.md ----------

def ref_y(labels, i, j):
    if labels.ndim == 1:
        return float(labels[i] == labels[j])
    a = {k for k in range(labels.shape[1]) if labels[i, k] > 0}
    b = {k for k in range(labels.shape[1]) if labels[j, k] > 0}
    return len(a & b) / len(a | b) if a | b else 0.0


def unit(x):
    norm = math.sqrt(sum(float(c) * float(c) for c in x))
    return [float(c) / norm for c in x]


def sq_dist(a, b):
    return sum((float(p) - float(q)) ** 2 for p, q in zip(a, b))


def cos(a, b):
    a, b = unit(a), unit(b)
    return sum(p * q for p, q in zip(a, b))


def log_softmax(values, k):
    top = max(values)
    return values[k] - top - math.log(sum(math.exp(x - top) for x in values))


def reference(u, v, s, t, labels, sigma=1.0, delta=1.5, margin="relaxed",
              relative_distance=True, label_mix=0.75, intra_modal_weight=0.0, form="margin",
              temperature=0.1, source_temperature=0.1, label_weights="relaxed",
              calibration="none"):
    n = len(u)
    with_source = s is not None
    if with_source:
        s = [unit(x) for x in s]
        t = [unit(x) for x in t]

    def exponents(sa, sb, i, j):
        """The calibrated distances of pair (i, j), one per retrieval direction."""
        row = [sq_dist(sa[i], sb[k]) for k in range(n)]
        column = [sq_dist(sa[k], sb[j]) for k in range(n)]
        if calibration == "none":
            return [row[j]]
        if calibration == "row":
            return [row[j] - min(row), row[j] - min(column)]
        return [4 * sum(x < row[j] for x in values) / (n - 1) for values in (row, column)]

    if with_source and sigma == "median":
        both = [z for i in range(n) for j in range(n) for z in exponents(s, t, i, j)]
        sigma = max(float(np.median(both)), 1e-6)

    def weight(sa, sb, i, j):
        if not with_source:  # the no-source control
            return label_mix * ref_y(labels, i, j)
        z = exponents(sa, sb, i, j)
        w = sum(math.exp(-x / sigma) for x in z) / len(z)
        if label_mix > 0:
            w = label_mix * ref_y(labels, i, j) + (1 - label_mix) * w
        return w

    def mrg(w):
        return delta * (1 - w) if margin == "relaxed" else delta

    def margin_term(sa, sb, ta, tb, i):
        d = [math.sqrt(sq_dist(ta[i], tb[j])) for j in range(n)]
        if relative_distance:
            mean = sum(d) / n
            d = [x / mean for x in d]
        total = 0.0
        for j in range(n):
            w = weight(sa, sb, i, j)
            pull = ref_y(labels, i, j) if label_weights == "hard" else w
            total += pull * d[j] ** 2 + (1 - pull) * max(0.0, mrg(w) - d[j]) ** 2
        return total

    def ce(sa, sb, ta, tb, i, transposed):
        # anchor b_i over all a_j when transposed, else anchor a_i over all b_j
        pair = (lambda j: (j, i)) if transposed else (lambda j: (i, j))
        logits, source, hard = [], [], []
        for j in range(n):
            a, b = pair(j)
            logits.append((cos(ta[a], tb[b]) - mrg(weight(sa, sb, a, b))) / temperature)
            source.append(cos(sa[a], sb[b]) / source_temperature)
            hard.append(ref_y(labels, a, b) if labels is not None else 0.0)
        total_hard = sum(hard)
        loss = 0.0
        for j in range(n):
            q = math.exp(log_softmax(source, j))
            if label_weights == "hard":
                q = hard[j] / total_hard if total_hard else 0.0
            elif label_mix > 0:
                q = label_mix * (hard[j] / total_hard if total_hard else 0.0) + (1 - label_mix) * q
            loss -= q * log_softmax(logits, j)
        return loss

    def term(sa, sb, ta, tb, i):
        if form == "margin":
            return margin_term(sa, sb, ta, tb, i)
        return 0.5 * (ce(sa, sb, ta, tb, i, False) + ce(sa, sb, ta, tb, i, True))

    out = []
    for i in range(n):
        value = term(s, t, u, v, i)
        if intra_modal_weight > 0:
            value += intra_modal_weight * (term(s, s, u, u, i) + term(t, t, v, v, i))
        out.append(value)
    return np.array(out)


# ----- tests -----------------------------------------------------------------------------------

def check(inputs, labels, **options):
    u, v, s, t = inputs
    got = ops.convert_to_numpy(soft_contrastive(u, v, s, t, labels, **options))
    assert got.shape == (N,) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference(u, v, s, t, labels, **options), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("intra_modal_weight", [0.0, 0.3])
@pytest.mark.parametrize("label_mix", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("relative_distance", [True, False])
@pytest.mark.parametrize("margin", ["relaxed", "fixed"])
@pytest.mark.parametrize("sigma", [0.7, "median"])
def test_margin_form_matches_reference(inputs, sigma, margin, relative_distance, label_mix,
                                       intra_modal_weight):
    check(inputs, CLASS_LABELS, sigma=sigma, margin=margin, delta=1.3,
          relative_distance=relative_distance, label_mix=label_mix,
          intra_modal_weight=intra_modal_weight)


@pytest.mark.parametrize("form", ["margin", "infonce"])
@pytest.mark.parametrize("intra_modal_weight", [0.0, 0.3])
@pytest.mark.parametrize("sigma", [0.7, "median"])
@pytest.mark.parametrize("calibration", ["row", "rank"])
def test_calibrated_labels_match_reference(inputs, calibration, sigma, intra_modal_weight, form):
    check(inputs, CLASS_LABELS, sigma=sigma, calibration=calibration, label_mix=0.5,
          intra_modal_weight=intra_modal_weight, form=form)


@pytest.mark.parametrize("intra_modal_weight", [0.0, 0.3])
@pytest.mark.parametrize("label_mix", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("margin", ["relaxed", "fixed"])
@pytest.mark.parametrize("sigma", [0.7, "median"])
def test_infonce_form_matches_reference(inputs, sigma, margin, label_mix, intra_modal_weight):
    check(inputs, CLASS_LABELS, sigma=sigma, margin=margin, label_mix=label_mix,
          intra_modal_weight=intra_modal_weight, form="infonce", temperature=0.2,
          source_temperature=0.5)


@pytest.mark.parametrize("intra_modal_weight", [0.0, 0.3])
@pytest.mark.parametrize("label_mix", [0.5, 1.0])
@pytest.mark.parametrize("form", ["margin", "infonce"])
def test_multi_hot_labels_match_reference(inputs, form, label_mix, intra_modal_weight):
    check(inputs, MULTI_HOT, sigma="median", label_mix=label_mix,
          intra_modal_weight=intra_modal_weight, form=form)


def test_labels_optional_without_label_mix(inputs):
    check(inputs, None, label_mix=0.0)


@pytest.mark.parametrize("label_mix", [0.0, 0.5])
@pytest.mark.parametrize("form", ["margin", "infonce"])
@pytest.mark.parametrize("labels", [CLASS_LABELS, MULTI_HOT])
def test_hard_label_weights_match_reference(inputs, labels, form, label_mix):
    # Ablation "relaxed margins only": pulled by the hard labels, margins from w_ij.
    check(inputs, labels, sigma=0.7, label_mix=label_mix, intra_modal_weight=0.3, form=form,
          label_weights="hard")


@pytest.mark.parametrize("intra_modal_weight", [0.0, 0.3])
@pytest.mark.parametrize("margin", ["relaxed", "fixed"])
@pytest.mark.parametrize("labels", [CLASS_LABELS, MULTI_HOT])
def test_no_source_control_matches_reference(inputs, labels, margin, intra_modal_weight):
    u, v, _, _ = inputs
    got = ops.convert_to_numpy(soft_contrastive(u, v, None, None, labels, delta=1.3,
                                                margin=margin, label_mix=0.5,
                                                intra_modal_weight=intra_modal_weight))
    expected = reference(u, v, None, None, labels, delta=1.3, margin=margin, label_mix=0.5,
                         intra_modal_weight=intra_modal_weight)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_no_source_control_through_the_loss_class(inputs):
    u, v, _, _ = inputs
    value = SoftContrastiveLoss(delta=1.3)(CLASS_LABELS, {"image": u, "text": v})
    expected = reference(u, v, None, None, CLASS_LABELS, delta=1.3).mean()
    np.testing.assert_allclose(float(ops.convert_to_numpy(value)), expected, rtol=1e-5)


def test_float_class_labels_are_cast(inputs):
    u, v, s, t = inputs
    as_int = soft_contrastive(u, v, s, t, CLASS_LABELS, label_mix=0.5)
    as_float = soft_contrastive(u, v, s, t, CLASS_LABELS.astype("float32"), label_mix=0.5)
    np.testing.assert_allclose(ops.convert_to_numpy(as_float), ops.convert_to_numpy(as_int))


@pytest.mark.parametrize("labels", [CLASS_LABELS, CLASS_LABELS % 2])
@pytest.mark.parametrize("margin", [0.5, 1.7])
def test_hard_fixed_absolute_equals_contrastive(inputs, labels, margin):
    u, v, s, t = inputs
    soft = soft_contrastive(u, v, s, t, labels, label_mix=1.0, margin="fixed", delta=margin,
                            relative_distance=False)
    hard = contrastive(u, v, labels, margin=margin)
    np.testing.assert_allclose(ops.convert_to_numpy(soft), ops.convert_to_numpy(hard),
                               rtol=1e-6, atol=1e-6)


def test_relaxed_labels_and_label_similarity(inputs):
    _, _, s, t = inputs
    w = ops.convert_to_numpy(relaxed_labels(s, t, sigma=0.8))
    su, tu = [unit(x) for x in s], [unit(x) for x in t]
    expected = [[math.exp(-sq_dist(su[i], tu[j]) / 0.8) for j in range(N)] for i in range(N)]
    np.testing.assert_allclose(w, expected, rtol=1e-5, atol=1e-6)
    for labels in (CLASS_LABELS, MULTI_HOT):
        y = ops.convert_to_numpy(label_similarity(labels, labels))
        expected = [[ref_y(labels, i, j) for j in range(N)] for i in range(N)]
        np.testing.assert_allclose(y, expected, rtol=1e-6)


@pytest.mark.parametrize("calibration", ["row", "rank"])
def test_calibrated_relaxed_labels(inputs, calibration):
    _, _, s, t = inputs
    su, tu = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (s, t))
    squared = ((su[:, None, :] - tu[None, :, :]) ** 2).sum(-1)
    if calibration == "row":
        z = [squared - squared.min(1, keepdims=True), squared - squared.min(0, keepdims=True)]
    else:
        z = [4 * np.argsort(np.argsort(squared, axis), axis) / (N - 1) for axis in (1, 0)]
    w = ops.convert_to_numpy(relaxed_labels(s, t, sigma=0.8, calibration=calibration))
    np.testing.assert_allclose(w, (np.exp(-z[0] / 0.8) + np.exp(-z[1] / 0.8)) / 2, rtol=1e-5,
                               atol=1e-6)
    # Calibrated labels spread over (0, 1] however far apart the source puts every pair: each
    # image's nearest text gets at least 1/2.
    assert np.all(w.max(axis=1) >= 0.5) and w.min() < 0.5


def test_median_sigma_spreads_far_apart_sources(inputs):
    # Near-orthogonal sources make exp(-d^2) tiny with sigma=1; the median brings w to ~exp(-1).
    _, _, s, t = inputs
    w = ops.convert_to_numpy(relaxed_labels(s, t, sigma="median"))
    assert abs(np.median(w) - math.exp(-1.0)) < 1e-5


def test_source_embeddings_carry_no_gradient_and_are_normalised(inputs):
    u, v, s, t = inputs
    base = soft_contrastive(u, v, s, t, CLASS_LABELS)
    scaled = soft_contrastive(u, v, 3.0 * s, 0.5 * t, CLASS_LABELS)
    np.testing.assert_allclose(ops.convert_to_numpy(base), ops.convert_to_numpy(scaled),
                               rtol=1e-5)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": "mean"}, "sigma"),
        ({"delta": -0.1}, "delta"),
        ({"margin": "soft"}, "margin"),
        ({"form": "cosine"}, "form"),
        ({"label_mix": 1.5}, "label_mix"),
        ({"label_mix": -0.1}, "label_mix"),
        ({"intra_modal_weight": -1.0}, "intra_modal_weight"),
        ({"temperature": 0.0}, "temperature"),
        ({"source_temperature": -1.0}, "source_temperature"),
        ({"label_weights": "soft"}, "label_weights"),
        ({"calibration": "softmax"}, "calibration"),
    ],
)
def test_bad_options_raise(inputs, options, match):
    u, v, s, t = inputs
    with pytest.raises(ValueError, match=match):
        soft_contrastive(u, v, s, t, CLASS_LABELS, **options)
    with pytest.raises(ValueError, match=match):
        SoftContrastiveLoss(**options)


def test_bad_shapes_and_missing_labels_raise(inputs):
    u, v, s, t = inputs
    with pytest.raises(ValueError, match="labels"):
        soft_contrastive(u, v, s, t, None, label_mix=0.5)
    with pytest.raises(ValueError, match="source_text_embeddings: 5"):
        soft_contrastive(u, v, s, t[:5], CLASS_LABELS)
    with pytest.raises(ValueError, match="labels: 5"):
        soft_contrastive(u, v, s, t, CLASS_LABELS[:5])
    with pytest.raises(ValueError, match="rank 2"):
        soft_contrastive(u[0], v, s, t, CLASS_LABELS)
    with pytest.raises(ValueError, match="same embedding size"):
        soft_contrastive(u, v[:, :3], s, t, CLASS_LABELS)
    with pytest.raises(ValueError, match="both source_image_embeddings and source_text"):
        soft_contrastive(u, v, s, None, CLASS_LABELS)
    with pytest.raises(ValueError, match="no-source control .* margin form"):
        soft_contrastive(u, v, None, None, CLASS_LABELS, form="infonce")
    with pytest.raises(ValueError, match="labels are needed with no source embeddings"):
        soft_contrastive(u, v, None, None, None, label_mix=0.0)
    with pytest.raises(ValueError, match='label_weights="hard"'):
        soft_contrastive(u, v, s, t, None, label_mix=0.0, label_weights="hard")
