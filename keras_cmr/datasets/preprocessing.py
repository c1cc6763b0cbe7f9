"""Per-modality feature transforms, fitted on the training split only (numpy / scikit-learn).

Steps, applied in the order given, each fitted on the training features as the previous steps
left them:

- "standardize": subtract the training mean and divide by the training standard deviation
  (population, ddof=0) per feature; a constant feature is only centred.
- "l2": divide each row by its L2 norm (a zero row stays zero).
- "hellinger": signed square root `sign(x) * sqrt(|x|)`, then "l2". On a non-negative row this
  equals `sqrt(x / sum(x))`, so the dot product of two mapped histograms is their
  Bhattacharyya coefficient (the Hellinger kernel); on signed features it is the signed
  square-root "power normalisation" of Perronnin et al. (ECCV 2010).
- "pca_whiten": `sklearn.decomposition.PCA(whiten=True)` on the training features, keeping the
  components whose variance exceeds 1e-10 of the largest (whitening a null direction would
  divide by zero).

Which steps help is an empirical question answered on validation; nothing here is a default.
"""

import numpy as np
from sklearn.decomposition import PCA

from keras_cmr.options import check_steps

MODALITIES = ("image", "text")
_RANK_TOLERANCE = 1e-10


def l2_rows(features):
    """Each row divided by its L2 norm; a zero row stays zero."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.where(norms > 0, norms, 1.0)


def _fit_standardize(train):
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return lambda features: (features - mean) / std


def _fit_pca_whiten(train):
    pca = PCA(whiten=True, svd_solver="full").fit(train)
    variances = pca.explained_variance_
    rank = int((variances > _RANK_TOLERANCE * variances[0]).sum())
    if rank < len(variances):
        pca = PCA(n_components=rank, whiten=True, svd_solver="full").fit(train)
    return pca.transform


def _fit_step(step, train):
    if step == "standardize":
        return _fit_standardize(train)
    if step == "pca_whiten":
        return _fit_pca_whiten(train)
    if step == "l2":
        return l2_rows
    return lambda features: l2_rows(np.sign(features) * np.sqrt(np.abs(features)))


def fit_transform_chain(steps, train_features):
    """Fit `steps` in order on `train_features` and return the fitted transform.

    Args:
        steps: sequence of names from `keras_cmr.options.PREPROCESSING_STEPS`.
        train_features: `(n, d)` training features.

    Returns:
        A function mapping a `(m, d)` array to its transformed float64 array.
    """
    steps = check_steps(steps, "feature")
    fitted, current = [], np.asarray(train_features, dtype=np.float64)
    for step in steps:
        transform = _fit_step(step, current)
        fitted.append(transform)
        current = transform(current)

    def apply(features):
        features = np.asarray(features, dtype=np.float64)
        for transform in fitted:
            features = transform(features)
        return features

    return apply
