"""Label-space ridge regression: both modalities mapped linearly onto their class labels.

Rasiwasia et al., "A new approach to cross-modal multimedia retrieval" (ACM MM 2010) match
image and text in a semantic space of class posteriors (semantic matching, SM, with
multiclass logistic regression). This baseline keeps that idea but makes the map linear and
closed form: each modality is regressed with `sklearn.linear_model.Ridge` onto its centred
one-hot (or multi-hot) labels, `min_W ||(X - mean) W - (Y - mean_Y)||^2 + alpha ||W||^2`,
and retrieval compares the cosine of the predicted label vectors. Centring the targets makes
the cosine compare deviations from the class prior rather than the shared prior itself (our
choice; measure on validation).
"""

import numbers

import numpy as np
from sklearn.linear_model import Ridge

from keras_cmr.linear.towers import linear_encoder, training_arrays


def _label_matrix(labels, num_classes):
    if labels.ndim == 2:
        return labels.astype(np.float64)
    return np.eye(num_classes)[labels]


def fit_label_regression(data, alpha=1.0, num_classes=None):
    """Fit each modality's ridge map onto the labels; return them as a `CrossModalEncoder`.

    Args:
        data: a `CrossModalDataset` (its train split), a `CrossModalSplit` or a tuple
            `(image, text, labels)`.
        alpha: ridge penalty, a number > 0, or a dict {"image": a, "text": b}.
        num_classes: number of classes (embedding width); default: the data set's, else the
            largest label plus one (or the multi-hot width).

    Returns:
        A `CrossModalEncoder` of width `num_classes` with linear towers.

    Raises:
        ValueError: on data without labels or an alpha that is not positive.
    """
    image, text, labels = training_arrays(data)
    if labels is None:
        raise ValueError("label regression needs labels: pass a data set, a split or "
                         "(image, text, labels)")
    alphas = alpha if isinstance(alpha, dict) else {"image": alpha, "text": alpha}
    for modality in ("image", "text"):
        value = alphas.get(modality)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
            raise ValueError(f"alpha for {modality} must be a number > 0, got {value!r}")
    if num_classes is None:
        num_classes = getattr(data, "num_classes", None) or (
            labels.shape[1] if labels.ndim == 2 else int(labels.max()) + 1)
    targets = _label_matrix(labels, num_classes)
    targets = targets - targets.mean(axis=0)
    maps = {}
    for modality, features in (("image", image), ("text", text)):
        ridge = Ridge(alpha=float(alphas[modality]), fit_intercept=True).fit(features, targets)
        # Ridge predicts (x - mean_x) @ coef.T + mean(targets), and mean(targets) is 0 here.
        maps[modality] = (features.mean(axis=0), ridge.coef_.T)
    return linear_encoder(maps)
