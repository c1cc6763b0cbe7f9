"""Preprocessing steps against numpy / scikit-learn references, fitted on train only."""

import numpy as np
import pytest
from sklearn.decomposition import PCA

from keras_cmr.datasets import CrossModalDataset, CrossModalSplit
from keras_cmr.datasets.preprocessing import fit_transform_chain


def make_dataset(rng):
    def split(n, name, shift):
        return CrossModalSplit(rng.gamma(2.0, size=(n, 6)) + shift, rng.normal(size=(n, 4)),
                               np.arange(n) % 3, name=name)
    return CrossModalDataset(split(60, "train", 0.0), split(30, "test", 1.0),
                             val=split(15, "val", 0.5))


def test_standardize_uses_train_statistics_on_every_split(rng):
    dataset = make_dataset(rng)
    result = dataset.preprocessed(image=["standardize"])
    train = dataset.train.image.astype(np.float64)
    mean, std = train.mean(axis=0), train.std(axis=0)
    for name in ("train", "val", "test"):
        raw = getattr(dataset, name).image.astype(np.float64)
        np.testing.assert_allclose(getattr(result, name).image, (raw - mean) / std, rtol=1e-5,
                                   atol=1e-5)
    np.testing.assert_array_equal(result.test.text, dataset.test.text)  # no text steps
    assert result.preprocessing == {"image": ["standardize"], "text": []}
    assert abs(result.test.image.mean()) > 0.1  # test keeps its shift: train statistics only


def test_hellinger_is_sqrt_of_l1_normalised_histograms_and_l2_is_unit_rows(rng):
    histograms = rng.integers(0, 5, size=(8, 5)).astype(float) + 0.1
    mapped = fit_transform_chain(["hellinger"], histograms)(histograms)
    np.testing.assert_allclose(mapped, np.sqrt(histograms / histograms.sum(1, keepdims=True)))
    signed = rng.normal(size=(6, 3))
    signed[0] = 0.0
    rows = fit_transform_chain(["l2"], signed)(signed)
    np.testing.assert_allclose(np.linalg.norm(rows[1:], axis=1), 1.0)
    np.testing.assert_array_equal(rows[0], 0.0)  # a zero row stays zero, no NaN


def test_pca_whiten_matches_sklearn_and_drops_null_directions(rng):
    train = rng.normal(size=(50, 3)) @ rng.normal(size=(3, 5))  # rank 3 in 5 dimensions
    other = rng.normal(size=(7, 5))
    whiten = fit_transform_chain(["pca_whiten"], train)
    reference = PCA(n_components=3, whiten=True, svd_solver="full").fit(train)
    np.testing.assert_allclose(whiten(other), reference.transform(other), rtol=1e-6)
    np.testing.assert_allclose(np.cov(whiten(train), rowvar=False), np.eye(3), atol=1e-8)


def test_steps_compose_in_order(rng):
    train, other = rng.gamma(2.0, size=(40, 4)), rng.gamma(2.0, size=(5, 4))
    chained = fit_transform_chain(["hellinger", "standardize"], train)(other)
    mapped_train = np.sqrt(train / train.sum(1, keepdims=True))
    mapped_other = np.sqrt(other / other.sum(1, keepdims=True))
    expected = (mapped_other - mapped_train.mean(0)) / mapped_train.std(0)
    np.testing.assert_allclose(chained, expected, rtol=1e-10)


def test_bad_steps_are_refused(rng):
    dataset = make_dataset(rng)
    with pytest.raises(ValueError, match=r"unknown image preprocessing step 'zca'"):
        dataset.preprocessed(image=["zca"])
    with pytest.raises(TypeError, match=r"sequence of step names, e.g. \['l2'\]"):
        dataset.preprocessed(text="l2")
    with pytest.raises(ValueError, match="already preprocessed"):
        dataset.preprocessed(image=["l2"]).preprocessed(text=["l2"])


def test_preprocessing_and_noise_records_survive_each_other(rng):
    dataset = make_dataset(rng).with_label_noise(0.2, seed=0).preprocessed(text=["l2"])
    assert dataset.label_noise["flipped"] == 15 and dataset.preprocessing["text"] == ["l2"]
