"""The data and optimiser settings: TrainingConfig fields, `prepare_dataset`'s order,
optimiser, input dropout."""

import dataclasses

import keras
import numpy as np
import pytest

from keras_cmr.config import TrainingConfig
from keras_cmr.datasets import CrossModalDataset, CrossModalSplit
from keras_cmr.datasets.noise import flip_labels
from keras_cmr.experiment.setting import prepare_dataset, setting_entries
from keras_cmr.layers import ProjectionTower

FAST = TrainingConfig(epochs=1, patience=1, embedding_dim=8, hidden_dims=(8,), verbose=0)


def small_dataset(rng, train=200, test=40, classes=4):
    def split(n, name):
        return CrossModalSplit(rng.normal(size=(n, 6)) * 3 + 5, rng.normal(size=(n, 5)),
                               np.arange(n) % classes, name=name)

    return CrossModalDataset(split(train, "train"), split(test, "test"), num_classes=classes)


def test_defaults_leave_the_data_and_optimizer_as_before(rng):
    dataset = small_dataset(rng)
    prepared = prepare_dataset(dataset, FAST, seed=3)
    carved = dataset.with_validation(FAST.validation_fraction, seed=3)
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(prepared, name).labels,
                                      getattr(carved, name).labels)
        np.testing.assert_array_equal(getattr(prepared, name).image,
                                      getattr(carved, name).image)
    assert setting_entries(prepared) == {}
    optimizer = FAST.optimizer()
    assert isinstance(optimizer, keras.optimizers.Adam) and optimizer.weight_decay is None
    assert not isinstance(optimizer, keras.optimizers.AdamW)
    assert float(optimizer.beta_1) == 0.5


def test_noise_comes_before_carving_and_preprocessing_after(rng):
    dataset = small_dataset(rng)
    config = dataclasses.replace(FAST, label_noise={"rate": 0.25, "kind": "asymmetric"},
                                 image_preprocessing=["standardize"])
    prepared = prepare_dataset(dataset, config, seed=5)
    # The noise: flip_labels on the whole clean training split with the run's seed...
    noisy, flipped = flip_labels(dataset.train.labels, 4, 0.25, 5, "asymmetric")
    assert prepared.label_noise == {"rate": 0.25, "kind": "asymmetric", "seed": 5,
                                    "flipped": len(flipped), "pairs": 200}
    # ...then validation carved from the noisy pairs, as `with_validation` carves them.
    expected = CrossModalDataset(
        CrossModalSplit(dataset.train.image, dataset.train.text, noisy, name="train"),
        dataset.test, num_classes=4).with_validation(config.validation_fraction, seed=5)
    np.testing.assert_array_equal(prepared.train.labels, expected.train.labels)
    np.testing.assert_array_equal(prepared.val.labels, expected.val.labels)
    np.testing.assert_array_equal(prepared.test.labels, dataset.test.labels)
    # Standardisation fitted on the carved training split only (not on train + val).
    train_raw = expected.train.image
    mean, std = train_raw.mean(axis=0), train_raw.std(axis=0)
    np.testing.assert_allclose(prepared.train.image, (train_raw - mean) / std, atol=1e-5)
    np.testing.assert_allclose(prepared.val.image, (expected.val.image - mean) / std, atol=1e-5)
    np.testing.assert_allclose(prepared.test.image, (dataset.test.image - mean) / std,
                               atol=1e-5)
    np.testing.assert_array_equal(prepared.train.text, expected.train.text)
    assert setting_entries(prepared)["preprocessing"] == {"image": ["standardize"], "text": []}
    # A run prepares once: preparing a prepared data set again is refused, not noised twice.
    for again in (config, dataclasses.replace(config, label_noise={"rate": 0.1})):
        with pytest.raises(ValueError, match="already has label noise"):
            prepare_dataset(prepared, again, seed=5)
    # The noise's own seed wins over the run's seed.
    seeded = dataclasses.replace(config, label_noise={"rate": 0.25, "seed": 9})
    assert prepare_dataset(dataset, seeded, seed=5).label_noise["seed"] == 9


@pytest.mark.parametrize("field, value, match", [
    ("label_noise", 0.4, "`label_noise` must be None or a dict"),
    ("label_noise", {"rate": 0.4, "sort": "x"}, r"unknown key\(s\) \['sort'\]"),
    ("label_noise", {"rate": 2.0}, r"rate must be a number in \[0, 1\]"),
    ("label_noise", {"rate": 0.1, "kind": "pairs"}, "kind must be one of"),
    ("image_preprocessing", ["whiten"], "unknown image preprocessing step 'whiten'"),
    ("weight_decay", -0.1, r"`weight_decay` must be a number >= 0"),
    ("input_dropout", 1.0, r"`input_dropout` must be a number in \[0, 1.0\)"),
    ("epochs", 0, "`epochs` must be an integer >= 1"),
    ("jit_compile", 1, '`jit_compile` must be "auto", true or false, got 1'),
    ("jit_compile", "xla", '`jit_compile` must be "auto", true or false'),
])
def test_config_refuses_bad_settings(field, value, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(FAST, **{field: value})


def test_weight_decay_gives_adamw():
    optimizer = dataclasses.replace(FAST, weight_decay=0.01).optimizer()
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer.weight_decay == pytest.approx(0.01)
    assert float(optimizer.learning_rate) == pytest.approx(FAST.learning_rate)


def test_input_dropout_drops_input_features_in_training_only():
    tower = ProjectionTower(4, hidden_dims=(), dropout=0.0, normalize=False, input_dropout=0.5)
    tower.build((None, 4))
    tower.output_layer.set_weights([np.eye(4, dtype="float32"), np.zeros(4, "float32")])
    ones = np.ones((64, 4), dtype="float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(tower(ones, training=False)), ones)
    dropped = keras.ops.convert_to_numpy(tower(ones, training=True))
    # Inverted dropout: each input is 0 or 1 / (1 - 0.5) = 2.
    assert set(np.unique(dropped)) == {0.0, 2.0}
    assert ProjectionTower.from_config(tower.get_config()).input_dropout == 0.5


def test_noisy_labels_turn_off_only_the_collapse_checks_chance_test(rng):
    from keras_cmr.experiment import run_method
    from keras_cmr.failures import TrainingFailure

    def split(n, name):  # 1% in class 1: chance mAP ~0.98, so chance + 0.01 is out of reach
        return CrossModalSplit(rng.normal(size=(n, 6)), rng.normal(size=(n, 5)),
                               (np.arange(n) % 100 == 0).astype(int), name=name)

    dataset = CrossModalDataset(split(400, "train"), split(100, "test"), num_classes=2)
    with pytest.raises(TrainingFailure, match="not above the chance level"):
        run_method("contrastive", dataset, FAST, seed=0)
    noisy = dataclasses.replace(FAST, label_noise={"rate": 0.5})
    _, result = run_method("contrastive", dataset, noisy, seed=0)
    assert result.label_noise["rate"] == 0.5 and np.isfinite(result.test["avg_map"])
