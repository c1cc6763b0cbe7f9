"""Portable initializers and dropout: numpy draws, masks from the counter, configs, saving."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_cmr.layers import (PortableDropout, PortableGlorotUniform, PortableRandomNormal,
                              ProjectionTower)
from keras_cmr.utils.random import counter_bits


def test_glorot_uniform_is_numpys_draw_from_the_seed():
    values = ops.convert_to_numpy(PortableGlorotUniform(seed=11)((6, 4)))
    limit = np.sqrt(6 / (6 + 4))
    expected = np.random.default_rng(11).uniform(-limit, limit, size=(6, 4)).astype("float32")
    np.testing.assert_array_equal(values, expected)
    assert values.dtype == np.float32


def test_random_normal_is_numpys_draw_from_the_seed():
    values = ops.convert_to_numpy(PortableRandomNormal(0.5, 2.0, seed=3)((5, 2)))
    np.testing.assert_array_equal(
        values, np.random.default_rng(3).normal(0.5, 2.0, size=(5, 2)).astype("float32"))


def test_initializers_without_a_seed_draw_it_from_pythons_random():
    keras.utils.set_random_seed(7)
    first = [PortableGlorotUniform().seed, PortableRandomNormal().seed]
    keras.utils.set_random_seed(7)
    assert [PortableGlorotUniform().seed, PortableRandomNormal().seed] == first
    assert first[0] != first[1]


def test_initializer_configs_round_trip():
    for initializer in (PortableGlorotUniform(seed=4), PortableRandomNormal(0.1, 0.2, seed=4)):
        copy = keras.initializers.deserialize(keras.initializers.serialize(initializer))
        assert type(copy) is type(initializer) and copy.get_config() == initializer.get_config()


def test_dropout_mask_is_the_counter_bits_of_the_seed_state():
    layer = PortableDropout(0.3, seed=21)
    x = np.arange(1, 41, dtype="float32").reshape(8, 5)
    for call in range(3):
        out = ops.convert_to_numpy(layer(x, training=True))
        keep = ops.convert_to_numpy(counter_bits(21, call, (8, 5))) >= round(0.3 * 2**15)
        np.testing.assert_allclose(out, np.where(keep, x / 0.7, 0.0), rtol=1e-6)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x, training=False)), x)


def test_dropout_keeps_the_expected_share_of_units():
    out = ops.convert_to_numpy(PortableDropout(0.25, seed=1)(np.ones((200, 100), "float32"),
                                                             training=True))
    share = (out > 0).mean()
    assert abs(share - 0.75) < 5 * np.sqrt(0.75 * 0.25 / out.size)


def test_dropout_refuses_a_noise_shape():
    with pytest.raises(ValueError, match="noise_shape"):
        PortableDropout(0.1, noise_shape=(None, 1))


def test_a_tower_saved_with_keras_dropout_loads_and_predicts_the_same(tmp_path, rng,
                                                                       monkeypatch):
    """A file written by towers of Keras' own Dropout and initializers loads into the portable
    ones unchanged (the seed generators are not in the weights file)."""
    from keras_cmr.layers import projection
    with monkeypatch.context() as patch:
        patch.setattr(projection, "PortableDropout", keras.layers.Dropout)
        patch.setattr(projection, "PortableGlorotUniform", keras.initializers.GlorotUniform)
        tower = ProjectionTower(4, hidden_dims=(6,), dropout=0.2)
        assert type(tower.dropout_layer) is keras.layers.Dropout
        inputs = keras.Input((3,))
        model = keras.Model(inputs, tower(inputs))
    x = rng.normal(size=(5, 3)).astype("float32")
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "tower.keras")
    loaded = keras.saving.load_model(tmp_path / "tower.keras")
    assert isinstance(loaded.layers[-1].dropout_layer, PortableDropout)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)


def _compiled(function):
    """`function` compiled whole by this backend's compiler: a break in its graph fails."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(function)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=True)
    import torch

    # fullgraph=True raises on a graph break; the eager backend traces without code generation.
    return torch.compile(function, fullgraph=True, backend="eager")


def test_compiled_dropout_draws_the_counter_bits_and_advances_its_state():
    layer = PortableDropout(0.3, seed=21)
    x = np.arange(1, 41, dtype="float32").reshape(8, 5)
    layer.build(x.shape)

    def call(state, inputs):
        return layer.stateless_call([], state, inputs, training=True)

    step = _compiled(call)
    state = [variable.value for variable in layer.non_trainable_variables]
    for count in range(2):
        out, state = step(state, ops.convert_to_tensor(x))
        keep = ops.convert_to_numpy(counter_bits(21, count, (8, 5))) >= round(0.3 * 2**15)
        np.testing.assert_allclose(ops.convert_to_numpy(out), np.where(keep, x / 0.7, 0.0),
                                   rtol=1e-6)
    np.testing.assert_array_equal(ops.convert_to_numpy(state[0]), [21, 2])
