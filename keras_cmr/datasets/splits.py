"""Seeded, class-stratified splitting of labelled pairs (pure numpy, backend independent)."""

import numbers

import numpy as np


def stratum_labels(labels):
    """One group id per row: the class index, or for multi-hot rows the first positive class.

    Multi-hot rows with no positive label get the group id -1, so they form a group of their own.

    Args:
        labels: 1-D integer class indices `(n,)` or 2-D multi-hot 0/1 labels `(n, C)`.

    Returns:
        int64 array `(n,)`.

    Raises:
        ValueError: if `labels` is not 1-D or 2-D.
    """
    labels = np.asarray(labels)
    if labels.ndim == 1:
        return labels.astype(np.int64)
    if labels.ndim == 2:
        positive = labels > 0
        first = np.argmax(positive, axis=1).astype(np.int64)
        return np.where(positive.any(axis=1), first, -1)
    raise ValueError(
        f"labels must be 1-D class indices or 2-D multi-hot, got shape {labels.shape}"
    )


def _validation_count(count, fraction):
    """How many of a class's `count` items go to the validation part."""
    if count < 2:
        # A singleton class cannot be on both sides; keep it where the model learns it.
        return 0
    wanted = int(np.floor(fraction * count + 0.5))  # round half up, unlike Python's round()
    # Every class with >= 2 items keeps at least one item on each side.
    return min(max(wanted, 1), count - 1)


def carve_validation(labels, fraction=0.1, seed=0):
    """Split row indices into a train part and a class-stratified validation part.

    For each class (in increasing order) its rows are permuted with one
    `np.random.default_rng(seed)` generator and `round(fraction * count)` of them (rounded half
    up) go to validation, clipped so that a class with at least 2 rows has at least one row on
    each side; a class with a single row stays in train. Multi-hot labels are stratified by
    their first positive class. Only numpy is used, so the split is identical on every Keras
    backend.

    Args:
        labels: 1-D integer class indices `(n,)` or 2-D multi-hot labels `(n, C)`.
        fraction: share of each class to put in the validation part, in (0, 1).
        seed: seed for `np.random.default_rng`.

    Returns:
        `(train_indices, val_indices)`: disjoint, sorted int64 arrays that together cover
        `range(n)`.

    Raises:
        ValueError: if `fraction` is not in (0, 1), `labels` is empty or not 1-D/2-D, or either
            part would be empty.
    """
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, numbers.Real)
        or not 0.0 < fraction < 1.0
    ):
        raise ValueError(f"fraction must be a number in (0, 1), got {fraction!r}")
    groups = stratum_labels(labels)
    if groups.size == 0:
        raise ValueError("cannot split an empty label array")
    rng = np.random.default_rng(seed)
    val_parts = []
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        take = _validation_count(members.size, fraction)
        val_parts.append(rng.permutation(members)[:take])
    val = np.sort(np.concatenate(val_parts)).astype(np.int64)
    train = np.setdiff1d(np.arange(groups.size, dtype=np.int64), val)
    if val.size == 0 or train.size == 0:
        raise ValueError(
            f"fraction={fraction} of {groups.size} rows gives {train.size} train and "
            f"{val.size} validation rows; both parts must be non-empty (classes with a single "
            "row always stay in train)"
        )
    return train, val


def stratified_folds(labels, folds, seed=0):
    """Assign each row to one of `folds` class-stratified folds (for cross-fitting).

    For each class (in increasing order) its rows are permuted with one
    `np.random.default_rng(seed)` generator and dealt out to folds 0, 1, ..., folds - 1 in
    turn, continuing from the fold where the previous class stopped, so that fold sizes
    differ by at most one and each class is spread evenly. Multi-hot labels are stratified by
    their first positive class. Only numpy is used: identical on every Keras backend.

    Args:
        labels: 1-D integer class indices `(n,)` or 2-D multi-hot labels `(n, C)`.
        folds: number of folds, an integer >= 2 and <= n.
        seed: seed for `np.random.default_rng`.

    Returns:
        int64 array `(n,)` of fold ids in [0, folds).

    Raises:
        ValueError: if `folds` is not an integer in [2, n].
    """
    groups = stratum_labels(labels)
    if (isinstance(folds, bool) or not isinstance(folds, numbers.Integral)
            or not 2 <= folds <= groups.size):
        raise ValueError(f"folds must be an integer in [2, {groups.size}] (the number of "
                         f"rows), got {folds!r}")
    rng = np.random.default_rng(seed)
    fold_ids = np.empty(groups.size, dtype=np.int64)
    start = 0
    for group in np.unique(groups):
        members = rng.permutation(np.flatnonzero(groups == group))
        fold_ids[members] = (start + np.arange(members.size)) % folds
        start = (start + members.size) % folds
    return fold_ids
