"""Canonical correlation analysis, plain or regularised, as a linear `CrossModalEncoder`.

For centred views X (n, dx) and Y (n, dy) with covariances Cxx, Cyy, Cxy, the directions
maximise corr(X wx, Y wy). Regularisation shrinks each within-view covariance towards a
multiple of the identity with the same trace, `(1 - r) C + r * trace(C) / d * I`, r in [0, 1]
(the shrinkage form of regularised CCA, Vinod 1976 / Leurgans et al. 1993: scale free, so r
means the same on SIFT histograms and on topic proportions). With `K = C^(-1/2)` computed by
`scipy.linalg.eigh` (directions of eigenvalue below 1e-10 of the largest dropped, a
pseudo-inverse: Wikipedia's LDA topic proportions sum to one, so Cyy is singular), the
singular vectors of `Kx Cxy Ky` (`scipy.linalg.svd`) give `Wx = Kx U`, `Wy = Ky V` and the
singular values are the canonical correlations.

Optionally each dimension is scaled by its correlation to the power p, as in Gong, Ke, Isard
and Lazebnik, "A multi-view embedding space for modeling internet images, tags, and their
semantics" (IJCV 2014), which found p = 4 helpful for cosine retrieval; p = 0 (default) is
plain CCA.
"""

import numbers

import numpy as np
import scipy.linalg

from keras_cmr.linear.towers import linear_encoder, training_arrays

_RANK_TOLERANCE = 1e-10


def _inverse_sqrt(covariance):
    values, vectors = scipy.linalg.eigh(covariance)
    keep = values > _RANK_TOLERANCE * values.max()
    return (vectors[:, keep] / np.sqrt(values[keep])) @ vectors[:, keep].T, int(keep.sum())


def _shrink(covariance, regularization):
    target = np.trace(covariance) / len(covariance) * np.eye(len(covariance))
    return (1.0 - regularization) * covariance + regularization * target


def canonical_correlation(image, text, dim, regularization=0.0):
    """CCA directions of two paired views.

    Args:
        image: `(n, dx)` features of the first view.
        text: `(n, dy)` features of the second view.
        dim: number of canonical pairs, at most the rank of either (regularised) covariance.
        regularization: shrinkage r in [0, 1] of both within-view covariances.

    Returns:
        dict with "image" and "text" -> `(mean, weights)` (weights `(d, dim)`) and
        "correlations" `(dim,)`, in decreasing order (the regularised objective's values when
        r > 0).

    Raises:
        ValueError: if r is outside [0, 1] or `dim` is not in [1, rank].
    """
    if (isinstance(regularization, bool) or not isinstance(regularization, numbers.Real)
            or not 0.0 <= regularization <= 1.0):
        raise ValueError(f"regularization must be a number in [0, 1], got {regularization!r}")
    image, text = np.asarray(image, dtype=np.float64), np.asarray(text, dtype=np.float64)
    means = image.mean(axis=0), text.mean(axis=0)
    centred = image - means[0], text - means[1]
    scale = 1.0 / (len(image) - 1)
    whiten_x, rank_x = _inverse_sqrt(_shrink(scale * centred[0].T @ centred[0], regularization))
    whiten_y, rank_y = _inverse_sqrt(_shrink(scale * centred[1].T @ centred[1], regularization))
    rank = min(rank_x, rank_y)
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not 1 <= dim <= rank:
        raise ValueError(f"dim must be an integer in [1, {rank}] (the rank of the smaller "
                         f"view's covariance: image {rank_x}, text {rank_y}), got {dim!r}")
    cross = scale * centred[0].T @ centred[1]
    left, correlations, right_t = scipy.linalg.svd(whiten_x @ cross @ whiten_y)
    return {"image": (means[0], whiten_x @ left[:, :dim]),
            "text": (means[1], whiten_y @ right_t.T[:, :dim]),
            "correlations": correlations[:dim]}


def fit_cca(data, dim, regularization=0.0, eigenvalue_power=0.0):
    """Fit (regularised) CCA on the training pairs; return it as a `CrossModalEncoder`.

    Labels are not used: CCA is the unsupervised baseline.

    Args:
        data: a `CrossModalDataset` (train split), a `CrossModalSplit` or `(image, text)`.
        dim: embedding width (number of canonical pairs).
        regularization: shrinkage r in [0, 1] (see the module docstring).
        eigenvalue_power: p; canonical dimension k is scaled by `correlation_k ** p`.

    Returns:
        A `CrossModalEncoder` with linear towers: `l2_normalize((x - mean) @ W)`.
    """
    image, text, _ = training_arrays(data)
    solution = canonical_correlation(image, text, dim, regularization)
    scaling = np.clip(solution["correlations"], 0.0, None) ** float(eigenvalue_power)
    return linear_encoder({modality: (mean, weights * scaling)
                           for modality, (mean, weights) in
                           ((m, solution[m]) for m in ("image", "text"))})
