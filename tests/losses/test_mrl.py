"""The MRL loss against an independent loop implementation and hand-derived values."""

import inspect
import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_cmr.losses import MRLLoss, mrl, multimodal_contrastive, robust_clustering

# The sizes of every loss test file: JAX compiles each eager op once per shape.
N, C, E = 6, 4, 4
CLASS_LABELS = np.array([0, 1, 0, 3, 1, 2])
# Row 3 has no label, row 4 every label: both have nothing (or everything) outside the set.
MULTI_HOT = np.array([[1, 0, 0, 1], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0],
                      [1, 1, 1, 1], [0, 1, 0, 0]])
LABELS = {"classes": CLASS_LABELS, "multi_hot": MULTI_HOT}


def label_set(labels, i):
    if labels.ndim == 1:
        return {int(labels[i])}
    return {k for k in range(labels.shape[1]) if labels[i, k] > 0}


def reference_clustering(a, b, labels, temperature):
    """sum over modalities of log(probability outside the label set), by loops."""
    out = []
    for i in range(len(a)):
        members = label_set(labels, i)
        total = 0.0
        for logits in (a, b):
            exps = [math.exp(float(x) / temperature) for x in logits[i]]
            outside = sum(e for k, e in enumerate(exps) if k not in members)
            total += math.log(outside / sum(exps)) if outside > 0 else 0.0
        out.append(total)
    return np.array(out)


def unit(x):
    return [float(p) / math.sqrt(sum(float(q) ** 2 for q in x)) for p in x]


def reference_contrastive(u, v, temperature):
    """l(u_i) + l(v_i), each anchor against the 2n - 1 other embeddings, by loops."""
    n = len(u)
    z = [unit(x) for x in u] + [unit(x) for x in v]

    def dot(p, q):
        return sum(x * y for x, y in zip(p, q))

    out = []
    for i in range(n):
        total = 0.0
        for anchor, partner in ((i, n + i), (n + i, i)):
            denominator = sum(math.exp(dot(z[anchor], z[b]) / temperature)
                              for b in range(2 * n) if b != anchor)
            total -= math.log(math.exp(dot(z[anchor], z[partner]) / temperature) / denominator)
        out.append(total)
    return np.array(out)


@pytest.fixture
def inputs(rng):
    u, v = (rng.normal(size=(N, E)).astype("float32") for _ in range(2))
    a, b = (rng.normal(size=(N, C)).astype("float32") for _ in range(2))
    return u, v, a, b


def to_numpy(x):
    return ops.convert_to_numpy(x)


@pytest.mark.parametrize("labels", ["classes", "multi_hot"])
@pytest.mark.parametrize("temperature", [1.0, 0.25])
def test_robust_clustering_matches_reference(inputs, labels, temperature):
    _, _, a, b = inputs
    labels = LABELS[labels]
    got = to_numpy(robust_clustering(a, b, labels=labels, temperature=temperature))
    assert got.shape == (N,) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference_clustering(a, b, labels, temperature),
                               rtol=1e-5, atol=1e-6)
    assert np.all(got <= 0.0)


@pytest.mark.parametrize("temperature", [1.0, 0.1])
def test_multimodal_contrastive_matches_reference(inputs, temperature):
    u, v, _, _ = inputs
    got = to_numpy(multimodal_contrastive(u, v, temperature=temperature))
    assert got.shape == (N,) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference_contrastive(u, v, temperature), rtol=1e-5)


@pytest.mark.parametrize("labels", ["classes", "multi_hot"])
@pytest.mark.parametrize("beta, temperature", [(0.5, 1.0), (0.7, 0.5), (0.0, 1.0), (1.0, 2.0)])
def test_mrl_is_the_weighted_sum(inputs, labels, beta, temperature):
    u, v, a, b = inputs
    labels = LABELS[labels]
    got = to_numpy(mrl(u, v, a, b, labels=labels, beta=beta, temperature=temperature))
    expected = (beta * reference_clustering(a, b, labels, temperature)
                + (1.0 - beta) * reference_contrastive(u, v, temperature))
    assert got.shape == (N,) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_hand_derived_values():
    # Two classes, equal logits: p = 1/2 in each modality, so 2 log(1/2).
    even = np.zeros((2, 2), "float32")
    np.testing.assert_allclose(to_numpy(robust_clustering(even, even, labels=np.array([0, 1]))),
                               [2 * math.log(0.5)] * 2, rtol=1e-6)
    # Logits (log 3, 0) labelled 0: p = 3/4, log(1/4); labelled 1: p = 1/4, log(3/4).
    skewed = np.array([[math.log(3.0), 0.0]] * 2, "float32")
    np.testing.assert_allclose(
        to_numpy(robust_clustering(skewed, even, labels=np.array([0, 1]))),
        [math.log(0.25) + math.log(0.5), math.log(0.75) + math.log(0.5)], rtol=1e-6)
    # u_1 = v_1 = e_1 and u_2 = v_2 = e_2: each anchor has its partner at cosine 1 and two
    # others at 0, so l = -log(e / (e + 2)) per anchor, twice per pair.
    basis = np.eye(2, dtype="float32")
    np.testing.assert_allclose(to_numpy(multimodal_contrastive(basis, basis)),
                               [2 * math.log(1 + 2 / math.e)] * 2, rtol=1e-6)


def test_confident_logits_stay_finite():
    # p[y] = 1 in float32: log(1 - p) computed directly would be log(0).
    confident = np.array([[100.0, -100.0, -100.0]], "float32")
    got = to_numpy(robust_clustering(confident, confident, labels=np.array([0])))
    np.testing.assert_allclose(got, [2 * (-200.0 + math.log(2.0))], rtol=1e-6)


def test_loss_class_is_the_mean_and_weights_samples(inputs):
    u, v, a, b = inputs
    loss = MRLLoss(beta=0.7, temperature=0.5)
    per_pair = to_numpy(mrl(u, v, a, b, labels=CLASS_LABELS, beta=0.7, temperature=0.5))
    y_pred = {"image": u, "text": v, "image_logits": a, "text_logits": b}
    # Keras hands the labels over as floats.
    np.testing.assert_allclose(to_numpy(loss(CLASS_LABELS.astype("float32"), y_pred)),
                               per_pair.mean(), rtol=1e-5)
    weights = np.linspace(0.0, 1.0, N).astype("float32")
    np.testing.assert_allclose(to_numpy(loss(CLASS_LABELS, y_pred, sample_weight=weights)),
                               (weights * per_pair).sum() / N, rtol=1e-5)


def test_config_and_keras_serialization_round_trip(inputs):
    u, v, a, b = inputs
    y_pred = {"image": u, "text": v, "image_logits": a, "text_logits": b}
    loss = MRLLoss(beta=0.3, temperature=0.2, reduction="sum")
    config = loss.get_config()
    assert set(config) == set(inspect.signature(MRLLoss.__init__).parameters) - {"self"}
    assert (config["beta"], config["temperature"]) == (0.3, 0.2)
    expected = to_numpy(loss(CLASS_LABELS, y_pred))
    clone = MRLLoss.from_config(config)
    assert clone.get_config() == config
    np.testing.assert_allclose(to_numpy(clone(CLASS_LABELS, y_pred)), expected, rtol=1e-6)
    serialized = keras.saving.serialize_keras_object(loss)
    assert serialized["registered_name"] == "keras_cmr>MRLLoss"
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is MRLLoss and restored.get_config() == config
    np.testing.assert_allclose(to_numpy(restored(CLASS_LABELS, y_pred)), expected, rtol=1e-6)


@pytest.mark.parametrize("options, match", [
    ({"beta": 1.5}, "beta must be in \\[0, 1\\]; received beta=1.5"),
    ({"beta": -0.1}, "beta must be in \\[0, 1\\]"),
    ({"temperature": 0.0}, "temperature must be > 0"),
    ({"temperature": -1.0}, "temperature must be > 0"),
])
def test_bad_options_raise(inputs, options, match):
    with pytest.raises(ValueError, match=match):
        mrl(*inputs, labels=CLASS_LABELS, **options)
    with pytest.raises(ValueError, match=match):
        MRLLoss(**options)


def test_bad_shapes_raise(inputs):
    u, v, a, b = inputs
    with pytest.raises(ValueError, match="text_embeddings: 5"):
        mrl(u, v[:5], a, b, labels=CLASS_LABELS)
    with pytest.raises(ValueError, match="image_logits: 5"):
        mrl(u, v, a[:5], b, labels=CLASS_LABELS)
    with pytest.raises(ValueError, match="labels: 5"):
        robust_clustering(a, b, labels=CLASS_LABELS[:5])
    with pytest.raises(ValueError, match="one static number of classes"):
        robust_clustering(a, b[:, :3], labels=CLASS_LABELS)
    with pytest.raises(ValueError, match="multi-hot labels have 3 classes but the logits have 4"):
        robust_clustering(a, b, labels=MULTI_HOT[:, :3])
    with pytest.raises(ValueError, match="same embedding size; received 4 and 3"):
        multimodal_contrastive(u, v[:, :3])
    with pytest.raises(ValueError, match="missing \\['text_logits'\\]"):
        MRLLoss()(CLASS_LABELS, {"image": u, "text": v, "image_logits": a})
