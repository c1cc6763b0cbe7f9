"""Projection tower and class heads: shapes, numpy references, config round trips."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_cmr.layers import CosineClassifier, L2Normalize, PrototypeClassifier, ProjectionTower


def numpy_normalize(x, axis=-1):
    norm = np.sqrt((x ** 2).sum(axis=axis, keepdims=True))
    return x / np.maximum(norm, 1e-6)


def test_projection_tower_matches_a_numpy_forward_pass(rng):
    tower = ProjectionTower(5, hidden_dims=(7,), dropout=0.1)
    x = rng.normal(size=(4, 3)).astype("float32")
    out = ops.convert_to_numpy(tower(x, training=False))
    (w1, b1), (w2, b2) = [layer.get_weights() for layer in (tower.hidden_layers[0],
                                                            tower.output_layer)]
    hidden = x @ w1 + b1
    # Keras' default gelu is the exact erf form.
    from scipy.special import erf
    hidden = 0.5 * hidden * (1 + erf(hidden / np.sqrt(2)))
    expected = numpy_normalize(hidden @ w2 + b2)
    assert out.shape == (4, 5)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_projection_tower_zero_output_stays_finite():
    tower = ProjectionTower(3, hidden_dims=())
    tower.build((None, 2))
    tower.output_layer.set_weights([np.zeros((2, 3)), np.zeros(3)])
    out = ops.convert_to_numpy(tower(np.ones((2, 2), "float32")))
    assert np.all(np.isfinite(out)) and np.all(out == 0)


@pytest.mark.parametrize("kwargs, message", [
    ({"output_dim": 0}, "output_dim"),
    ({"output_dim": 4, "hidden_dims": (0,)}, "hidden_dims"),
    ({"output_dim": 4, "dropout": 1.0}, "dropout"),
])
def test_projection_tower_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ProjectionTower(**kwargs)


def test_cosine_classifier_matches_numpy(rng):
    head = CosineClassifier(4, scale=16.0)
    e = rng.normal(size=(5, 3)).astype("float32")
    logits = ops.convert_to_numpy(head(e))
    expected = 16.0 * numpy_normalize(e) @ numpy_normalize(head.get_weights()[0], axis=0)
    np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_prototype_classifier_matches_numpy_and_is_frozen(rng):
    head = PrototypeClassifier(3, seed=7)
    e = rng.normal(size=(4, 6)).astype("float32")
    logits = ops.convert_to_numpy(head(e))
    prototypes = head.get_weights()[0]
    np.testing.assert_allclose(np.linalg.norm(prototypes, axis=1), 1.0, atol=1e-5)
    expected = -((e[:, None, :] - prototypes[None]) ** 2).sum(-1)
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    assert head.trainable_weights == []


@pytest.mark.parametrize("layer", [
    ProjectionTower(8, hidden_dims=(4, 4), activation="relu", dropout=0.2, normalize=False),
    CosineClassifier(5, scale=4.0),
    PrototypeClassifier(5, seed=3),
    L2Normalize(),
])
def test_layer_config_round_trip(layer):
    config = keras.saving.serialize_keras_object(layer)
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(layer)
    assert restored.get_config() == layer.get_config()
