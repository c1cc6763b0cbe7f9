"""The chance level of a ranking, and the check that trained embeddings did not collapse.

`check_not_collapsed` raises `keras_cmr.failures.TrainingFailure` for embeddings that hold
NaN or inf, are all one point, or rank no better than `chance_map`, the expected mAP of a
random ranking.
"""

import numpy as np

from keras_cmr.evaluation.metrics import evaluate_retrieval
from keras_cmr.failures import TrainingFailure

# Embeddings whose L2-normalised rows all lie within this (max-abs) distance of the first
# row count as one point: our choice, far below the spread of any trained model's embeddings
# and above float32 rounding of a constant output.
COLLAPSE_ATOL = 1e-5
# How far above the chance level validation avg mAP must be: our choice, 4 to 6 standard
# deviations of the avg mAP of random rankings on a 10-class validation split (measured by
# simulation: std 0.0024 with 145 pairs, the digits' split; 0.0016 with 217, Wikipedia's).
CHANCE_MARGIN = 0.01
# Queries whose relevant counts are computed at a time (multi-hot labels).
_QUERY_CHUNK = 1024


def chance_map(query_labels, gallery_labels):
    """The expected mAP of a uniformly random ranking of the gallery, for these labels.

    For a query with R relevant items (same class id, or at least one shared label for
    multi-hot labels) among n gallery items, a random ranking has expected average precision

        E[AP] = (R - 1) / (n - 1) + H_n * (n - R) / (n * (n - 1)),   H_n = sum_{i=1..n} 1/i

    (1 when R = n; H_n / n when R = 1; about R / n, the fraction of relevant items, when R
    is large). A query with R = 0 counts 0, as in `keras_cmr.evaluation`. Returns the mean
    over queries, a float.

    Args:
        query_labels: (Nq,) class ids or (Nq, C) multi-hot labels.
        gallery_labels: labels of the gallery, of the same form.
    """
    query_labels, gallery_labels = np.asarray(query_labels), np.asarray(gallery_labels)
    if query_labels.ndim != gallery_labels.ndim or query_labels.ndim not in (1, 2):
        raise ValueError(f"labels must be both 1-D class ids or both 2-D multi-hot, got shapes "
                         f"{query_labels.shape} and {gallery_labels.shape}.")
    n = len(gallery_labels)
    if n == 0 or len(query_labels) == 0:
        raise ValueError("chance_map needs at least one query and one gallery item.")
    if query_labels.ndim == 1:
        classes, counts = np.unique(gallery_labels, return_counts=True)
        found = np.searchsorted(classes, query_labels).clip(0, len(classes) - 1)
        relevant = np.where(classes[found] == query_labels, counts[found], 0)
    else:
        gallery = gallery_labels.astype(np.float32).T
        relevant = np.concatenate([
            ((query_labels[start:start + _QUERY_CHUNK].astype(np.float32) @ gallery) > 0.5)
            .sum(axis=1) for start in range(0, len(query_labels), _QUERY_CHUNK)])
    relevant = relevant.astype(np.float64)
    if n == 1:
        expected = (relevant > 0).astype(np.float64)
    else:
        harmonic = np.sum(1.0 / np.arange(1, n + 1))
        expected = (relevant - 1) / (n - 1) + harmonic * (n - relevant) / (n * (n - 1))
        expected = np.where(relevant > 0, expected, 0.0)
    return float(expected.mean())


def _spread(embeddings):
    """The largest max-abs distance of an L2-normalised row from the first row."""
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    rows = embeddings / np.where(norms > 0, norms, 1)
    return float(np.abs(rows - rows[:1]).max())


def check_not_collapsed(encoder, split, margin=CHANCE_MARGIN, atol=COLLAPSE_ATOL,
                        check_chance=True):
    """Raises `TrainingFailure` when `encoder` has collapsed on `split` (a validation split).

    Collapsed means any of: an embedding holds NaN or inf; all image (or all text) embeddings
    are one point (L2-normalised rows within `atol`, max-abs, of each other); or, with
    `check_chance`, the avg mAP (the mean of image -> text and text -> image mAP,
    `keras_cmr.evaluation`) is not above the chance level of the split's labels
    (`chance_map`) by more than `margin`.

    Args:
        encoder: a keras_cmr model (anything with `encode_image` and `encode_text`).
        split: a `CrossModalSplit` (image, text, labels paired row for row).
        margin: how far above chance the avg mAP must be.
        atol: tolerance of "one point".
        check_chance: False for noisy split labels: measured against them, a model that
            learned the clean classes scores near chance at high noise rates (our
            measurement on Wikipedia at 60% symmetric noise: val avg mAP 0.130 against a
            chance of 0.122, test on clean labels 0.220), so only the first two tests apply.

    Returns:
        {"avg_map": ..., "chance_map": ...} when the encoder has not collapsed.
    """
    embeddings = {"image": np.asarray(encoder.encode_image(split.image)),
                  "text": np.asarray(encoder.encode_text(split.text))}
    for modality, rows in embeddings.items():
        if not np.isfinite(rows).all():
            raise TrainingFailure(f"the {modality} embeddings of the {split.name} split hold "
                                  "NaN or inf: training diverged; try a lower learning rate.")
        if len(rows) > 1 and _spread(rows) <= atol:
            raise TrainingFailure(
                f"the embeddings collapsed: all {len(rows)} {modality} embeddings of the "
                f"{split.name} split are the same point (within {atol}), so retrieval ranks "
                "nothing; the model was not saved.")
    avg_map = evaluate_retrieval(embeddings["image"], embeddings["text"], split.labels)["avg_map"]
    chance = chance_map(split.labels, split.labels)
    if check_chance and avg_map <= chance + margin:
        raise TrainingFailure(
            f"the embeddings collapsed: avg mAP on the {split.name} split is {avg_map:.4f}, "
            f"not above the chance level of its labels ({chance:.4f}, the expected mAP of a "
            f"random ranking) by more than {margin}; the model was not saved.")
    return {"avg_map": float(avg_map), "chance_map": chance}
