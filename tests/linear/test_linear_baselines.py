"""Classical baselines: CCA against a QR reference and sklearn, ridge against the normal
equations, retrieval above chance, and a `.keras` round trip."""

import keras
import numpy as np
import pytest
from sklearn.cross_decomposition import CCA

from keras_cmr.datasets import CrossModalDataset, CrossModalSplit
from keras_cmr.evaluation import evaluate_model
from keras_cmr.linear import canonical_correlation, fit_cca, fit_label_regression


def shared_latent_views(rng, n=300):
    latent = rng.normal(size=(n, 2))
    image = latent @ rng.normal(size=(2, 6)) + 0.5 * rng.normal(size=(n, 6))
    text = latent @ rng.normal(size=(2, 4)) + 0.5 * rng.normal(size=(n, 4))
    return image, text


def unit_rows(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_canonical_correlations_match_the_qr_reference_and_sklearn(rng):
    image, text = shared_latent_views(rng)
    solution = canonical_correlation(image, text, dim=3)
    # Bjorck and Golub (1973): the canonical correlations are the singular values of Qx' Qy.
    q_image = np.linalg.qr(image - image.mean(0))[0]
    q_text = np.linalg.qr(text - text.mean(0))[0]
    reference = np.linalg.svd(q_image.T @ q_text, compute_uv=False)[:3]
    np.testing.assert_allclose(solution["correlations"], reference, rtol=1e-8)
    projected_image = (image - solution["image"][0]) @ solution["image"][1]
    projected_text = (text - solution["text"][0]) @ solution["text"][1]
    empirical = [np.corrcoef(projected_image[:, k], projected_text[:, k])[0, 1]
                 for k in range(3)]
    np.testing.assert_allclose(empirical, reference, rtol=1e-8)
    scores = CCA(n_components=1, max_iter=2000, tol=1e-12).fit(image, text).transform(image,
                                                                                    text)
    sklearn_first = abs(np.corrcoef(scores[0][:, 0], scores[1][:, 0])[0, 1])
    assert solution["correlations"][0] == pytest.approx(sklearn_first, rel=1e-6)


def test_full_regularisation_reduces_to_the_svd_of_the_cross_covariance(rng):
    image, text = shared_latent_views(rng)
    solution = canonical_correlation(image, text, dim=2, regularization=1.0)
    cross = np.cov(image, text, rowvar=False)[:6, 6:]
    scale = np.sqrt(np.trace(np.cov(image, rowvar=False)) / 6
                    * np.trace(np.cov(text, rowvar=False)) / 4)
    expected = np.linalg.svd(cross, compute_uv=False)[:2] / scale
    np.testing.assert_allclose(solution["correlations"], expected, rtol=1e-8)


def test_cca_encoder_embeds_as_the_closed_form_and_survives_saving(rng, tmp_path):
    image, text = shared_latent_views(rng)
    encoder = fit_cca((image, text), dim=2, eigenvalue_power=1.0)
    solution = canonical_correlation(image, text, dim=2)
    mean, weights = solution["image"]
    expected = unit_rows((image[:5] - mean) @ weights * solution["correlations"])
    np.testing.assert_allclose(encoder.encode_image(image[:5]), expected, atol=1e-5)
    path = str(tmp_path / "cca.keras")
    encoder.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.encode_text(text[:5]), encoder.encode_text(text[:5]),
                               atol=1e-6)


def test_label_regression_matches_the_ridge_normal_equations(rng):
    image, text = rng.normal(size=(40, 5)), rng.normal(size=(40, 3))
    labels = np.arange(40) % 3
    encoder = fit_label_regression((image, text, labels), alpha={"image": 2.0, "text": 0.5})
    targets = np.eye(3)[labels] - np.eye(3)[labels].mean(0)
    for features, alpha, encode in ((image, 2.0, encoder.encode_image),
                                    (text, 0.5, encoder.encode_text)):
        centred = features - features.mean(0)
        weights = np.linalg.solve(centred.T @ centred + alpha * np.eye(features.shape[1]),
                                  centred.T @ targets)
        np.testing.assert_allclose(encode(features[:6]), unit_rows(centred[:6] @ weights),
                                   atol=1e-5)


def class_dataset(rng, n_train=240, n_test=120, num_classes=4):
    image_centres = rng.normal(size=(num_classes, 8))
    text_centres = rng.normal(size=(num_classes, 5))

    def split(n, name):
        labels = np.arange(n) % num_classes
        return CrossModalSplit(image_centres[labels] + 0.8 * rng.normal(size=(n, 8)),
                               text_centres[labels] + 0.8 * rng.normal(size=(n, 5)), labels,
                               name=name)
    return CrossModalDataset(split(n_train, "train"), split(n_test, "test"))


@pytest.mark.parametrize("fit", [lambda d: fit_cca(d, 3, regularization=0.1),
                                 lambda d: fit_label_regression(d, alpha=1.0)],
                         ids=["cca", "label_regression"])
def test_retrieval_beats_chance_on_separable_classes(rng, fit):
    dataset = class_dataset(rng)
    test = dataset.test
    result = evaluate_model(fit(dataset), test.image, test.text, test.labels)
    assert result["avg_map"] > 0.6  # chance is about 1/4 with four balanced classes


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x, y: canonical_correlation(x, y, dim=5), r"dim must be an integer in \[1, 4\]"),
        (lambda x, y: canonical_correlation(x, y, 2, regularization=1.5),
         r"regularization must be a number in \[0, 1\]"),
        (lambda x, y: fit_label_regression((x, y)), "needs labels"),
        (lambda x, y: fit_label_regression((x, y, np.zeros(len(x))), alpha=0.0),
         "alpha for image must be a number > 0"),
        (lambda x, y: fit_cca([x, y], 2), "expected a CrossModalDataset"),
    ],
)
def test_bad_input_is_refused(rng, call, match):
    image, text = shared_latent_views(rng, n=30)
    with pytest.raises((ValueError, TypeError), match=match):
        call(image, text)
