"""The labels of the losses: class indices or multi-hot, as pair matrices and class targets."""

import keras
from keras import ops


def _standardize_labels(labels):
    """(class indices (n,) int32, None) or (None, multi-hot (n, C) float32 in {0, 1}).

    A (n, 1) column is read as class indices. Labels may arrive as floats (Keras converts
    y_true to the loss dtype): indices are rounded, multi-hot entries > 0 count as members.
    """
    labels = ops.convert_to_tensor(labels)
    if len(labels.shape) == 2 and labels.shape[-1] == 1:
        labels = ops.squeeze(labels, axis=-1)
    if len(labels.shape) == 1:
        if "float" in keras.backend.standardize_dtype(labels.dtype):
            labels = ops.round(labels)
        return ops.cast(labels, "int32"), None
    if len(labels.shape) == 2:
        return None, ops.cast(labels > 0, "float32")
    raise ValueError(
        "labels must be 1-D class indices or 2-D multi-hot; received shape "
        f"{tuple(labels.shape)}"
    )


def _shared_counts(labels_a, labels_b):
    """(equal-class matrix or shared-label counts, multi-hot a, multi-hot b)."""
    index_a, hot_a = _standardize_labels(labels_a)
    index_b, hot_b = _standardize_labels(labels_b)
    if (index_a is None) != (index_b is None):
        raise ValueError("labels_a and labels_b must both be class indices or both multi-hot")
    if index_a is not None:
        equal = ops.cast(ops.equal(index_a[:, None], index_b[None, :]), "float32")
        return equal, None, None
    return ops.matmul(hot_a, ops.transpose(hot_b)), hot_a, hot_b


def same_class(labels_a, labels_b):
    """(n, m) binary matrix: 1 where the classes are equal (multi-hot: >= 1 shared label)."""
    shared, _, _ = _shared_counts(labels_a, labels_b)
    return ops.cast(shared > 0, "float32")


def label_similarity(labels_a, labels_b):
    """(n, m) label similarity y_ij in [0, 1], the hard labels of the soft losses.

    Class indices: y_ij = 1 if the classes are equal, else 0. Multi-hot: the Jaccard index
    y_ij = |A_i & B_j| / |A_i | B_j| of the label sets (0 when both sets are empty).

    Args:
        labels_a: (n,) class indices or (n, C) multi-hot.
        labels_b: (m,) class indices or (m, C) multi-hot, the same kind as `labels_a`.

    Returns:
        float32 tensor of shape (n, m).
    """
    shared, hot_a, hot_b = _shared_counts(labels_a, labels_b)
    if hot_a is None:
        return shared
    union = ops.sum(hot_a, axis=-1)[:, None] + ops.sum(hot_b, axis=-1)[None, :] - shared
    return shared / ops.maximum(union, 1.0)


def one_hot_targets(labels, num_classes):
    """(n, C) targets that sum to 1 per row: one-hot classes, or multi-hot / label count.

    A multi-hot row with no label gives a zero row (a zero cross-entropy).
    """
    index, hot = _standardize_labels(labels)
    if index is not None:
        return ops.one_hot(index, num_classes, dtype="float32")
    return hot / ops.maximum(ops.sum(hot, axis=-1, keepdims=True), 1.0)


def label_vectors(labels, num_classes):
    """(n, C) regression targets: the one-hot class, or the multi-hot vector as given."""
    index, hot = _standardize_labels(labels)
    if index is not None:
        return ops.one_hot(index, num_classes, dtype="float32")
    return hot
