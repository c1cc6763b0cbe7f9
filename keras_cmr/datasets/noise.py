"""Seeded label noise on training labels (pure numpy, identical on every Keras backend).

Definitions (used by `CrossModalDataset.with_label_noise`):

- **rate**: the fraction of the labelled pairs whose label is changed to a *different* class.
  Exactly `round(rate * n)` of the `n` pairs are flipped (rounded half up, as
  `carve_validation` rounds), chosen uniformly without replacement.
- **symmetric**: a flipped label goes to one of the other `C - 1` classes, uniformly.
- **asymmetric** ("pair flip"): a flipped label of class `c` goes to the fixed class
  `(c + 1) mod C`. This is the pair-flip transition matrix of Han et al., "Co-teaching: Robust
  training of deep neural networks with extremely noisy labels" (NeurIPS 2018), not the
  hand-picked similar-class pairs of Patrini et al. (CVPR 2017), which need meaningful class
  names. On data sets whose class order carries no meaning (Wikipedia's categories) the
  "confusable" neighbour is arbitrary: the kind tests structured, class-dependent noise, not
  a semantically confusable one.

Only single-label (1-D class index) labels are supported: flipping one class of a multi-hot
row has no agreed definition, so multi-hot labels are refused with a clear error.
"""

import numpy as np

from keras_cmr.options import check_noise_arguments

def flip_count(num_labels, rate):
    """`round(rate * num_labels)`, rounded half up: the exact number of labels flipped."""
    return int(np.floor(rate * num_labels + 0.5))


def flip_labels(labels, num_classes, rate, seed, kind="symmetric"):
    """Return a copy of `labels` with exactly `flip_count(len(labels), rate)` labels changed.

    Args:
        labels: 1-D integer class indices in `[0, num_classes)`.
        num_classes: number of classes `C`, at least 2.
        rate: fraction of labels changed, in [0, 1].
        seed: seed for `np.random.default_rng`; the rows and new classes depend only on it,
            the labels and the arguments.
        kind: "symmetric" (uniform over the other classes) or "asymmetric" (`c -> (c+1) mod C`).

    Returns:
        `(noisy_labels, flipped_rows)`: an int64 copy of `labels` and the sorted indices of the
        rows whose label changed.

    Raises:
        ValueError: on multi-hot (2-D) labels, fewer than 2 classes, a label outside
            `[0, num_classes)`, a rate outside [0, 1] or an unknown kind.
        TypeError: if `seed` is not an integer.
    """
    check_noise_arguments(rate, kind, seed)
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"label noise is defined for 1-D class indices only; got labels of "
                         f"shape {labels.shape} (multi-hot labels have no single class to flip)")
    if num_classes < 2:
        raise ValueError(f"label noise needs at least 2 classes to flip between, got "
                         f"num_classes={num_classes}")
    labels = labels.astype(np.int64)
    outside = (labels < 0) | (labels >= num_classes)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise ValueError(f"row {row} has label {labels[row]}, outside [0, {num_classes})")
    rng = np.random.default_rng(seed)
    flipped = np.sort(rng.choice(len(labels), size=flip_count(len(labels), rate),
                                 replace=False)).astype(np.int64)
    if kind == "symmetric":
        # An offset in [1, C) moves each flipped label to a different class, uniformly.
        offsets = rng.integers(1, num_classes, size=len(flipped))
    else:
        offsets = np.ones(len(flipped), dtype=np.int64)
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + offsets) % num_classes
    return noisy, flipped
