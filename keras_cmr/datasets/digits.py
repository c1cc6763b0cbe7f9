"""A download-free stand-in data set: two views of scikit-learn's 8x8 handwritten digits."""

import numpy as np
from sklearn.datasets import load_digits

from keras_cmr.datasets.container import CrossModalDataset, CrossModalSplit
from keras_cmr.datasets.splits import carve_validation

PIXEL_MAX = 16.0  # load_digits pixels are counts 0..16


def load_digits_two_view(test_fraction=0.2, seed=0):
    """Load scikit-learn's digits as a two-view data set, for smoke tests and examples.

    This is a stand-in, NOT image-text data: each 8x8 digit (1,797 images, 10 classes) is cut
    into two views, as in the split-MNIST two-view construction of multi-view learning. The
    left half (columns 0-3, 32 values) plays the "image" modality and the right half (columns
    4-7, 32 values) the "text" modality. It ships with scikit-learn, so it needs no download;
    use it to check that code runs, not to report retrieval results.

    Args:
        test_fraction: share of each class held out as the test split, in (0, 1).
        seed: seed of the stratified train/test split (`carve_validation`).

    Returns:
        A `CrossModalDataset` named "digits": features float32 in [0, 1] (pixels / 16),
        labels 0..9, class names "0".."9", no validation split.

    Raises:
        ValueError: if `test_fraction` is not in (0, 1).
    """
    digits = load_digits()
    images = digits.images.astype(np.float32) / PIXEL_MAX  # (n, 8 rows, 8 columns)
    left = images[:, :, :4].reshape(len(images), -1)
    right = images[:, :, 4:].reshape(len(images), -1)
    labels = digits.target.astype(np.int64)
    train_indices, test_indices = carve_validation(labels, test_fraction, seed)

    def split(indices, name):
        return CrossModalSplit(left[indices], right[indices], labels[indices], name=name)

    return CrossModalDataset(
        train=split(train_indices, "train"),
        test=split(test_indices, "test"),
        num_classes=10,
        class_names=[str(digit) for digit in range(10)],
        name="digits",
    )
