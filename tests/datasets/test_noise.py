"""Label noise: exact flip counts, seeded, train (and val) only, clear errors."""

import numpy as np
import pytest

from keras_cmr.datasets import CrossModalDataset, CrossModalSplit
from keras_cmr.datasets.noise import flip_labels


def make_dataset(rng, n_train=200, n_test=50, num_classes=4):
    def split(n, name):
        return CrossModalSplit(rng.normal(size=(n, 3)), rng.normal(size=(n, 2)),
                               np.arange(n) % num_classes, name=name)
    return CrossModalDataset(split(n_train, "train"), split(n_test, "test"), name="toy")


@pytest.mark.parametrize("kind", ["symmetric", "asymmetric"])
@pytest.mark.parametrize("rate, expected", [(0.0, 0), (0.2, 40), (0.3025, 61), (1.0, 200)])
def test_exactly_round_rate_times_n_labels_change(rng, kind, rate, expected):
    dataset = make_dataset(rng)
    noisy = dataset.with_label_noise(rate, seed=3, kind=kind)
    changed = noisy.train.labels != dataset.train.labels
    assert changed.sum() == expected  # 0.3025 * 200 = 60.5 rounds half up to 61
    assert noisy.label_noise == {"rate": rate, "kind": kind, "seed": 3, "flipped": expected,
                                 "pairs": 200}
    np.testing.assert_array_equal(noisy.train.image, dataset.train.image)
    np.testing.assert_array_equal(noisy.test.labels, dataset.test.labels)
    assert noisy.test is dataset.test
    if kind == "asymmetric":
        old = dataset.train.labels[changed]
        np.testing.assert_array_equal(noisy.train.labels[changed], (old + 1) % 4)


def test_symmetric_targets_cover_the_other_classes_uniformly():
    labels = np.zeros(30000, dtype=np.int64)
    noisy, flipped = flip_labels(labels, 4, 0.6, seed=0)
    counts = np.bincount(noisy[flipped], minlength=4)
    assert counts[0] == 0 and len(flipped) == 18000
    np.testing.assert_allclose(counts[1:] / len(flipped), 1 / 3, atol=0.015)


def test_same_seed_same_noise_different_seed_different_noise(rng):
    dataset = make_dataset(rng)
    first = dataset.with_label_noise(0.3, seed=1).train.labels
    np.testing.assert_array_equal(first, dataset.with_label_noise(0.3, seed=1).train.labels)
    assert (first != dataset.with_label_noise(0.3, seed=2).train.labels).any()


def test_noise_then_carve_gives_noisy_validation_and_keeps_the_record(rng):
    dataset = make_dataset(rng)
    noisy = dataset.with_label_noise(0.5, seed=0).with_validation(0.25, seed=0)
    clean = dataset.with_validation(0.25, seed=0)
    assert noisy.label_noise["flipped"] == 100 and noisy.val is not None
    # The carve keeps rows in order, so a row's clean label is found by its features.
    clean_by_row = {row.tobytes(): label for row, label in
                    zip(dataset.train.image, dataset.train.labels)}
    val_changed = sum(clean_by_row[row.tobytes()] != label
                      for row, label in zip(noisy.val.image, noisy.val.labels))
    train_changed = sum(clean_by_row[row.tobytes()] != label
                        for row, label in zip(noisy.train.image, noisy.train.labels))
    assert val_changed > 0 and val_changed + train_changed == 100
    assert noisy.test is clean.test


def test_carve_then_noise_flips_the_pool_of_train_and_val(rng):
    carved = make_dataset(rng).with_validation(0.25, seed=0)
    noisy = carved.with_label_noise(0.1, seed=5, kind="asymmetric")
    train_changed = (noisy.train.labels != carved.train.labels).sum()
    val_changed = (noisy.val.labels != carved.val.labels).sum()
    assert train_changed + val_changed == 20 and noisy.label_noise["pairs"] == 200
    np.testing.assert_array_equal(noisy.val.text, carved.val.text)
    np.testing.assert_array_equal(noisy.test.labels, carved.test.labels)


@pytest.mark.parametrize(
    "rate, kind, seed, error, match",
    [
        (-0.1, "symmetric", 0, ValueError, r"rate must be a number in \[0, 1\]"),
        (1.5, "symmetric", 0, ValueError, r"got 1.5"),
        (True, "symmetric", 0, ValueError, r"rate must be"),
        (0.1, "pairflip", 0, ValueError, r"kind must be one of \('symmetric', 'asymmetric'\)"),
        (0.1, "symmetric", 1.5, TypeError, r"seed must be an integer"),
    ],
)
def test_bad_arguments_are_refused(rng, rate, kind, seed, error, match):
    with pytest.raises(error, match=match):
        make_dataset(rng).with_label_noise(rate, seed=seed, kind=kind)


def test_noise_twice_and_multi_hot_are_refused(rng):
    noisy = make_dataset(rng).with_label_noise(0.1)
    with pytest.raises(ValueError, match="already has label noise"):
        noisy.with_label_noise(0.1)
    multi = CrossModalSplit(rng.normal(size=(4, 2)), rng.normal(size=(4, 2)),
                            np.eye(2, dtype=int)[[0, 1, 0, 1]])
    with pytest.raises(ValueError, match="multi-hot labels"):
        CrossModalDataset(multi, multi).with_label_noise(0.1)
    with pytest.raises(ValueError, match="at least 2 classes"):
        flip_labels(np.zeros(5, dtype=int), 1, 0.2, seed=0)
