"""The loss classes: the dict calling contract, mean(function), sample weights, serialization."""

import inspect

import keras
import numpy as np
import pytest
from keras import ops

from keras_cmr import losses

# The sizes of every loss test file: JAX compiles each eager op once per shape.
N, C, E = 6, 4, 4
CLASS_LABELS = np.array([0, 1, 0, 3, 1, 2])


def make_arrays():
    rng = np.random.default_rng(7)
    names = ["image", "text", "source_image", "source_text", "image_logits", "text_logits",
             "image_predictions", "text_predictions"]
    return {name: rng.normal(size=(N, E)).astype("float32") for name in names}


A = make_arrays()

# (loss object with non-default options, its y_pred keys, the function it must average)
CASES = {
    "soft_contrastive": (
        losses.SoftContrastiveLoss(sigma="median", delta=0.8, margin="fixed",
                                   relative_distance=False, label_mix=0.3,
                                   intra_modal_weight=0.2, form="infonce", temperature=0.2,
                                   source_temperature=0.3),
        ["image", "text", "source_image", "source_text"],
        lambda y: losses.soft_contrastive(
            A["image"], A["text"], A["source_image"], A["source_text"], y, sigma="median",
            delta=0.8, margin="fixed", relative_distance=False, label_mix=0.3,
            intra_modal_weight=0.2, form="infonce", temperature=0.2, source_temperature=0.3)),
    "contrastive": (losses.ContrastiveLoss(margin=0.7), ["image", "text"],
                    lambda y: losses.contrastive(A["image"], A["text"], y, margin=0.7)),
    "triplet": (losses.TripletLoss(margin=0.3, mining="all"), ["image", "text"],
                lambda y: losses.triplet(A["image"], A["text"], y, margin=0.3, mining="all")),
    "infonce": (losses.InfoNCELoss(temperature=0.2), ["image", "text"],
                lambda y: losses.infonce(A["image"], A["text"], temperature=0.2)),
    "supervised_infonce": (
        losses.SupervisedInfoNCELoss(temperature=0.3), ["image", "text"],
        lambda y: losses.supervised_infonce(A["image"], A["text"], y, temperature=0.3)),
    "class_wise_cross_entropy": (
        losses.ClassWiseCrossEntropy(), ["image_logits", "text_logits"],
        lambda y: losses.class_wise_cross_entropy(A["image_logits"], A["text_logits"], labels=y)),
    "symmetric_cross_entropy": (
        losses.SymmetricCrossEntropy(alpha=0.5, beta=2.0), ["image_logits", "text_logits"],
        lambda y: losses.symmetric_cross_entropy(A["image_logits"], A["text_logits"], labels=y,
                                                 alpha=0.5, beta=2.0)),
    "label_regression": (
        losses.LabelRegressionLoss(), ["image_predictions", "text_predictions"],
        lambda y: losses.label_regression(A["image_predictions"], A["text_predictions"], labels=y)),
    "dscmr": (
        losses.DSCMRLoss(alpha=0.5, beta=0.2),
        ["image", "text", "image_predictions", "text_predictions"],
        lambda y: losses.dscmr(A["image"], A["text"], A["image_predictions"],
                               A["text_predictions"], labels=y, alpha=0.5, beta=0.2)),
}
NAMES = sorted(CASES)


def y_pred(name):
    return {key: A[key] for key in CASES[name][1]}


def to_numpy(x):
    return ops.convert_to_numpy(x)


@pytest.mark.parametrize("name", NAMES)
def test_class_is_mean_of_function(name):
    loss, _, function = CASES[name]
    per_anchor = to_numpy(function(CLASS_LABELS))
    assert per_anchor.shape == (N,)
    # The class gets labels as Keras passes them (floats) and extra keys a model may add.
    value = to_numpy(loss(CLASS_LABELS.astype("float32"), {**y_pred(name), "extra": A["text"]}))
    np.testing.assert_allclose(value, per_anchor.mean(), rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_sample_weight_and_no_reduction(name):
    loss, _, function = CASES[name]
    per_anchor = to_numpy(function(CLASS_LABELS))
    weights = np.linspace(0.0, 1.0, N).astype("float32")
    np.testing.assert_allclose(to_numpy(loss(CLASS_LABELS, y_pred(name), sample_weight=weights)),
                               (weights * per_anchor).sum() / N, rtol=1e-5)
    unreduced = loss.__class__.from_config({**loss.get_config(), "reduction": None})
    np.testing.assert_allclose(to_numpy(unreduced(CLASS_LABELS, y_pred(name))), per_anchor,
                               rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    loss = CASES[name][0]
    config = loss.get_config()
    arguments = set(inspect.signature(loss.__class__.__init__).parameters) - {"self"}
    assert set(config) == arguments  # every constructor argument, nothing else
    clone = loss.__class__.from_config(config)
    assert clone.get_config() == config
    np.testing.assert_allclose(to_numpy(clone(CLASS_LABELS, y_pred(name))),
                               to_numpy(loss(CLASS_LABELS, y_pred(name))), rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_keras_serialization_round_trip(name):
    loss = CASES[name][0]
    serialized = keras.saving.serialize_keras_object(loss)
    assert serialized["registered_name"] == f"keras_cmr>{loss.__class__.__name__}"
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
    np.testing.assert_allclose(to_numpy(restored(CLASS_LABELS, y_pred(name))),
                               to_numpy(loss(CLASS_LABELS, y_pred(name))), rtol=1e-6)


def test_mixed_precision_policy_round_trips_and_stays_finite():
    loss = losses.SoftContrastiveLoss(dtype="mixed_bfloat16")
    assert keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(loss)).get_config()["dtype"] == "mixed_bfloat16"
    value = to_numpy(ops.cast(loss(CLASS_LABELS, y_pred("soft_contrastive")), "float32"))
    assert np.isfinite(value)


@pytest.mark.parametrize(
    "loss, function",
    [
        (losses.InfoNCELoss(temperature=0.07),
         lambda t: losses.infonce(A["image"], A["text"], temperature=t)),
        (losses.SupervisedInfoNCELoss(temperature=0.1),
         lambda t: losses.supervised_infonce(A["image"], A["text"], CLASS_LABELS, temperature=t)),
        (losses.SoftContrastiveLoss(form="infonce", temperature=0.1),
         lambda t: losses.soft_contrastive(A["image"], A["text"], A["source_image"],
                                           A["source_text"], CLASS_LABELS, form="infonce",
                                           temperature=t)),
    ],
)
def test_learned_temperature_overrides_configured(loss, function):
    predictions = {key: A[key] for key in ("image", "text", "source_image", "source_text")}
    learned = ops.convert_to_tensor(0.5)
    value = to_numpy(loss(CLASS_LABELS, {**predictions, "temperature": learned}))
    np.testing.assert_allclose(value, to_numpy(function(0.5)).mean(), rtol=1e-5)
    assert abs(value - to_numpy(loss(CLASS_LABELS, predictions))) > 1e-3


@pytest.mark.parametrize(
    "loss, keys",
    [
        (losses.SoftContrastiveLoss(label_mix=0.0), CASES["soft_contrastive"][1]),
        (losses.TripletLoss(), ["image", "text"]),
        (losses.InfoNCELoss(), ["image", "text"]),
    ],
)
def test_labels_may_be_none_where_unused(loss, keys):
    assert np.isfinite(to_numpy(loss(None, {key: A[key] for key in keys})))


def test_labels_needed_for_label_mix():
    with pytest.raises(ValueError, match="label_mix"):
        losses.SoftContrastiveLoss()(None, y_pred("soft_contrastive"))


@pytest.mark.parametrize("name", NAMES)
def test_missing_key_or_non_dict_raises(name):
    loss, keys, _ = CASES[name]
    partial = {key: A[key] for key in keys[1:]}
    with pytest.raises(ValueError, match=keys[0]):
        loss(CLASS_LABELS, partial)
    with pytest.raises(ValueError, match="dict"):
        loss(CLASS_LABELS, A[keys[0]])
