"""carve_validation and stratified_folds: stratified per class, seeded, disjoint and complete."""

import numpy as np
import pytest

from keras_cmr.datasets import carve_validation, stratified_folds


def labels_with_counts(counts, rng):
    labels = np.repeat(np.arange(len(counts)), counts)
    return rng.permutation(labels)


def check_partition(train, val, n):
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)  # sorted, no repeats
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(n))


@pytest.mark.parametrize(
    "counts, fraction, expected_val",
    [
        # 10% of 10, 20, 5 (0.5 rounds up), 2 (at least 1), 1 (a singleton stays in train).
        ([10, 20, 5, 2, 1], 0.1, [1, 2, 1, 1, 0]),
        # 25% of 8, 4, 3 (0.75 rounds to 1), 40.
        ([8, 4, 3, 40], 0.25, [2, 1, 1, 10]),
        # 25% of 10 is 2.5, rounded half up to 3 (Python's round() would give 2).
        ([10, 6], 0.25, [3, 2]),
        # 90% of 2 would empty the class's train side: one item is kept on each side.
        ([2, 10], 0.9, [1, 9]),
    ],
)
def test_per_class_validation_counts(rng, counts, fraction, expected_val):
    labels = labels_with_counts(counts, rng)
    train, val = carve_validation(labels, fraction=fraction, seed=0)
    check_partition(train, val, len(labels))
    np.testing.assert_array_equal(np.bincount(labels[val], minlength=len(counts)), expected_val)


def test_seeded_and_deterministic(rng):
    labels = labels_with_counts([30, 50, 20], rng)
    first = carve_validation(labels, 0.2, seed=7)
    second = carve_validation(labels.copy(), 0.2, seed=7)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    other = carve_validation(labels, 0.2, seed=8)
    assert not np.array_equal(first[1], other[1])


def test_numpy_generator_is_the_only_source_of_randomness(rng):
    labels = labels_with_counts([30, 50], rng)
    np.random.seed(0)
    first = carve_validation(labels, 0.2, seed=1)
    np.random.seed(99)  # the legacy global state must not matter
    np.testing.assert_array_equal(first[1], carve_validation(labels, 0.2, seed=1)[1])


def test_multi_hot_is_stratified_by_first_positive_label():
    # Rows 0-9 first positive class 0, rows 10-19 first positive class 2 (class 0 also set later).
    labels = np.zeros((20, 3), dtype=int)
    labels[:10, 0] = 1
    labels[:10, 1] = 1
    labels[10:, 2] = 1
    labels[10:, 1] = 0
    labels[15:, 0] = 0
    train, val = carve_validation(labels, fraction=0.2, seed=0)
    check_partition(train, val, 20)
    assert np.sum(val < 10) == 2 and np.sum(val >= 10) == 2


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, True, "0.1", None])
def test_rejects_fraction_outside_open_unit_interval(fraction):
    with pytest.raises(ValueError, match=r"fraction must be a number in \(0, 1\)"):
        carve_validation(np.arange(10) % 2, fraction=fraction)


def test_rejects_empty_parts():
    with pytest.raises(ValueError, match=r"0 validation rows; both parts must be non-empty"):
        carve_validation(np.arange(5), fraction=0.5)  # five singleton classes
    with pytest.raises(ValueError, match=r"empty label array"):
        carve_validation(np.array([], dtype=int))


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_stratified_folds_balance_every_class(rng, folds):
    labels = rng.integers(0, 4, size=53)
    fold_ids = stratified_folds(labels, folds, seed=3)
    assert fold_ids.shape == (53,) and fold_ids.dtype == np.int64
    sizes = np.bincount(fold_ids, minlength=folds)
    assert sizes.sum() == 53 and sizes.max() - sizes.min() <= 1
    for label in range(4):
        per_fold = np.bincount(fold_ids[labels == label], minlength=folds)
        assert per_fold.max() - per_fold.min() <= 1
    np.testing.assert_array_equal(fold_ids, stratified_folds(labels, folds, seed=3))
    assert not np.array_equal(fold_ids, stratified_folds(labels, folds, seed=4))


@pytest.mark.parametrize("folds", [1, 54, 2.0, True])
def test_stratified_folds_reject_bad_counts(folds):
    with pytest.raises(ValueError, match="folds must be an integer in \\[2, 53\\]"):
        stratified_folds(np.zeros(53, dtype=int), folds)
