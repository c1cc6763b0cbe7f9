"""Selective label trust: the agreements, the pair trust and the loss with trust="agreement",
against scalar loops written from the rule (keras_cmr/losses/label_trust.py)."""

import math

import numpy as np
import pytest
from keras import ops

from keras_cmr.losses import SoftContrastiveLoss, soft_contrastive, soft_labels
from keras_cmr.losses.label_trust import class_scores, label_agreement, pair_trust

N = 6  # pairs, as tests/losses/conftest.py's `inputs`
CLASS_LABELS = np.array([0, 1, 0, 2, 1, 0])
# Class 3 is held by one pair only (its leave-one-out mean is empty); row 3 holds no label.
MULTI_HOT = np.array([[1, 0, 0, 1], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0],
                      [1, 0, 1, 0], [0, 1, 1, 0]])


# ----- the reference: loops over pairs and classes on Python floats -----------------------------

def unit(x):
    norm = math.sqrt(sum(float(c) ** 2 for c in x))
    return [float(c) / norm for c in x]


def classes_of(labels, i):
    if labels.ndim == 1:
        return {int(labels[i])}
    return {c for c in range(labels.shape[1]) if labels[i, c] > 0}


def num_classes(labels):
    return int(labels.max()) + 1 if labels.ndim == 1 else labels.shape[1]


def ref_scores(s, t, labels):
    """g_ic = mean over the modalities of cos(embedding of pair i, class-c mean without i)."""
    s, t = [unit(x) for x in s], [unit(x) for x in t]
    scores = []
    for i in range(len(s)):
        row = []
        for c in range(num_classes(labels)):
            others = [k for k in range(len(s)) if k != i and c in classes_of(labels, k)]
            if not others:
                row.append(0.0)
                continue
            mean = [sum(s[k][f] + t[k][f] for k in others) for f in range(len(s[0]))]
            mean = unit(mean)
            row.append(0.5 * (sum(a * b for a, b in zip(s[i], mean))
                              + sum(a * b for a, b in zip(t[i], mean))))
        scores.append(row)
    return scores


def ref_agreement(s, t, labels, temperature):
    out = []
    for i, row in enumerate(ref_scores(s, t, labels)):
        own = classes_of(labels, i)
        top = max(row)
        relative = [math.exp((g - top) / temperature) for g in row]
        out.append(sum(relative[c] for c in own) / len(own) if own else 0.0)
    return np.array(out)


def ref_y(labels, i, j):
    a, b = classes_of(labels, i), classes_of(labels, j)
    return len(a & b) / len(a | b) if a | b else 0.0


def ref_loss(u, v, s, t, labels, trust, label_mix=0.75, sigma=1.0, delta=1.5,
             margin="relaxed", relative_distance=True, intra_modal_weight=0.0):
    """l_i = sum_j [w_ij d_ij^2 + (1 - w_ij) max(0, m_ij - d_ij)^2] with
    w_ij = lam_ij y_ij + (1 - lam_ij) exp(-||s_i - t_j||^2 / sigma), lam_ij = label_mix a_i a_j
    (i != j), label_mix (i = j)."""
    n = len(u)
    s, t = [unit(x) for x in s], [unit(x) for x in t]

    def sq(a, b):
        return sum((float(p) - float(q)) ** 2 for p, q in zip(a, b))

    def block(sa, sb, ta, tb, i):
        d = [math.sqrt(sq(ta[i], tb[j])) for j in range(n)]
        if relative_distance:
            d = [x / (sum(d) / n) for x in d]
        total = 0.0
        for j in range(n):
            lam = label_mix * (1.0 if i == j else trust[i] * trust[j])
            w = lam * ref_y(labels, i, j) + (1 - lam) * math.exp(-sq(sa[i], sb[j]) / sigma)
            m = delta * (1 - w) if margin == "relaxed" else delta
            total += w * d[j] ** 2 + (1 - w) * max(0.0, m - d[j]) ** 2
        return total

    cross = np.array([block(s, t, u, v, i) for i in range(n)])
    if intra_modal_weight == 0:
        return cross
    return cross + intra_modal_weight * np.array(
        [block(s, s, u, u, i) + block(t, t, v, v, i) for i in range(n)])


# ----- tests -----------------------------------------------------------------------------------

@pytest.mark.parametrize("labels", [CLASS_LABELS, MULTI_HOT], ids=["classes", "multi_hot"])
def test_class_scores_leave_the_pair_out(inputs, labels):
    _, _, s, t = inputs
    got = ops.convert_to_numpy(class_scores(s, t, labels))
    np.testing.assert_allclose(got, ref_scores(s, t, labels), atol=1e-5)


@pytest.mark.parametrize("labels", [CLASS_LABELS, MULTI_HOT], ids=["classes", "multi_hot"])
@pytest.mark.parametrize("temperature", [0.05, 0.3, 4.0])
def test_agreement_matches_reference(inputs, labels, temperature):
    _, _, s, t = inputs
    got = ops.convert_to_numpy(label_agreement(s, t, labels, temperature=temperature))
    assert got.shape == (N,) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref_agreement(s, t, labels, temperature), rtol=1e-4,
                               atol=1e-6)
    if labels.ndim == 2:
        assert got[3] == 0.0  # a pair without a label agrees with nothing


def test_agreement_is_one_where_the_source_agrees_and_falls_with_the_temperature():
    # Two tight clusters; pair 2 sits in cluster 0 but is labelled 1.
    s = np.array([[1, 0.1], [1, -0.1], [1, 0.0], [0.1, 1], [-0.1, 1], [0, 1]], "float32")
    labels = np.array([0, 0, 1, 1, 1, 1])
    sharp, soft = (ops.convert_to_numpy(label_agreement(s, s, labels, temperature=value))
                   for value in (0.05, 10.0))
    np.testing.assert_allclose(np.delete(sharp, 2), 1.0)
    assert sharp[2] < 1e-4 and 0.9 < soft[2] < 1.0


def test_pair_trust_is_the_product_off_the_diagonal(rng):
    a = rng.uniform(size=N).astype("float32")
    expected = [[1.0 if i == j else a[i] * a[j] for j in range(N)] for i in range(N)]
    np.testing.assert_allclose(ops.convert_to_numpy(pair_trust(a)), expected, rtol=1e-6)


@pytest.mark.parametrize("labels", [CLASS_LABELS, MULTI_HOT], ids=["classes", "multi_hot"])
@pytest.mark.parametrize("margin, relative_distance, intra_modal_weight",
                         [("relaxed", True, 0.0), ("fixed", False, 0.0),
                          ("relaxed", True, 0.3)])
def test_loss_with_agreement_trust_matches_reference(inputs, rng, labels, margin,
                                                     relative_distance, intra_modal_weight):
    u, v, s, t = inputs
    trust = rng.uniform(size=N).astype("float32")
    options = dict(label_mix=0.6, sigma=0.8, delta=1.3, margin=margin,
                   relative_distance=relative_distance, intra_modal_weight=intra_modal_weight)
    got = ops.convert_to_numpy(soft_contrastive(u, v, s, t, labels, label_trust=trust,
                                                trust="agreement", **options))
    np.testing.assert_allclose(got, ref_loss(u, v, s, t, labels, trust, **options), rtol=1e-5,
                               atol=1e-5)
    # Through the loss class, label_trust as an entry of y_pred.
    loss = SoftContrastiveLoss(trust="agreement", **options)
    y_pred = {"image": u, "text": v, "source_image": s, "source_text": t, "label_trust": trust}
    np.testing.assert_allclose(ops.convert_to_numpy(loss(labels, y_pred)), got.mean(),
                               rtol=1e-5)


def test_soft_labels_weights_use_the_pair_trust(inputs, rng):
    _, _, s, t = inputs
    trust = rng.uniform(size=N).astype("float32")
    weights = ops.convert_to_numpy(soft_labels(s, t, CLASS_LABELS, trust, trust="agreement",
                                               label_mix=0.5)["image_text"].weights)
    su, tu = [unit(x) for x in s], [unit(x) for x in t]
    for i in range(N):
        for j in range(N):
            lam = 0.5 * (1.0 if i == j else trust[i] * trust[j])
            relaxed = math.exp(-sum((p - q) ** 2 for p, q in zip(su[i], tu[j])))
            assert weights[i, j] == pytest.approx(
                lam * ref_y(CLASS_LABELS, i, j) + (1 - lam) * relaxed, rel=1e-5)


def test_global_trust_is_the_loss_without_trust(inputs):
    u, v, s, t = inputs
    before = ops.convert_to_numpy(soft_contrastive(u, v, s, t, CLASS_LABELS))
    global_trust = ops.convert_to_numpy(soft_contrastive(u, v, s, t, CLASS_LABELS,
                                                         trust="global", trust_temperature=3.0))
    np.testing.assert_array_equal(global_trust, before)
    # Full agreement everywhere is the global trust, bit for bit.
    full = ops.convert_to_numpy(soft_contrastive(u, v, s, t, CLASS_LABELS,
                                                 label_trust=np.ones(N, "float32"),
                                                 trust="agreement"))
    np.testing.assert_array_equal(full, before)


def test_zero_label_mix_ignores_the_trust(inputs, rng):
    u, v, s, t = inputs
    trust = rng.uniform(size=N).astype("float32")
    np.testing.assert_array_equal(
        ops.convert_to_numpy(soft_contrastive(u, v, s, t, CLASS_LABELS, label_trust=trust,
                                              trust="agreement", label_mix=0.0)),
        ops.convert_to_numpy(soft_contrastive(u, v, s, t, CLASS_LABELS, label_mix=0.0)))


def test_missing_extra_or_misshapen_label_trust_raises(inputs):
    u, v, s, t = inputs
    with pytest.raises(ValueError, match='trust="agreement" needs label_trust'):
        soft_contrastive(u, v, s, t, CLASS_LABELS, trust="agreement")
    with pytest.raises(ValueError, match='trust="global" does not use it'):
        soft_contrastive(u, v, s, t, CLASS_LABELS, label_trust=np.ones(N, "float32"))
    with pytest.raises(ValueError, match="label_trust must have rank 1"):
        soft_contrastive(u, v, s, t, CLASS_LABELS, label_trust=np.ones((N, 1), "float32"),
                         trust="agreement")
    with pytest.raises(ValueError, match="number of pairs must be equal"):
        soft_contrastive(u, v, s, t, CLASS_LABELS, label_trust=np.ones(N - 1, "float32"),
                         trust="agreement")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        label_agreement(s, t, CLASS_LABELS, temperature=0.0)
