"""Shared helpers of the losses: float32 casting, safe distances, cosine and label matrices.

Every loss computes in float32 whatever its inputs' dtype (float16 and bfloat16 overflow or lose
the small differences that distances and soft-max terms need) and returns float32.
"""

import keras
from keras import ops

from keras_cmr.utils import arrays

# Squared distances at or below this are treated as 0 by `safe_sqrt`; also a floor for divisors.
# Far below any real squared norm (1e-12 would stop normalising rows of norm < 1e-6), and still
# above float32's smallest normal number.
EPSILON = 1e-30


def to_float32(x):
    return ops.cast(ops.convert_to_tensor(x), "float32")


def safe_sqrt(x):
    """sqrt(x) for x >= 0 with a finite gradient at 0: sqrt(x) where x > eps, else exactly 0.

    The inner `where` keeps sqrt away from 0, so neither branch's gradient is inf (an outer
    `where` alone would still give 0 * inf = nan).
    """
    positive = x > EPSILON
    return ops.where(positive, ops.sqrt(ops.where(positive, x, 1.0)), 0.0)


def safe_norm(x, axis=-1):
    """||x||_2 along `axis`, differentiable (gradient 0) at x = 0."""
    return safe_sqrt(ops.sum(ops.square(x), axis=axis))


def l2_normalize(x):
    """x / ||x||_2 per row; only an exact zero row is floored (it stays 0, not nan)."""
    return arrays.l2_normalize(x, epsilon=EPSILON)


def squared_distances(a, b):
    """(n, m) matrix ||a_i - b_j||^2, clamped at 0 against cancellation in the expansion."""
    squared = (
        ops.sum(ops.square(a), axis=-1)[:, None]
        + ops.sum(ops.square(b), axis=-1)[None, :]
        - 2.0 * ops.matmul(a, ops.transpose(b))
    )
    return ops.maximum(squared, 0.0)


def self_squared_distances(a):
    """(n, n) matrix ||a_i - a_j||^2 with an exact 0 diagonal.

    The expansion leaves ~1e-7 * ||a_i||^2 on the diagonal, i.e. distances ~1e-3, enough to
    move a row mean (relative distance) by 1e-4.
    """
    index = ops.arange(ops.shape(a)[0])
    diagonal = ops.equal(index[:, None], index[None, :])
    return ops.where(diagonal, 0.0, squared_distances(a, a))


def distances(a, b=None):
    """(n, m) matrix ||a_i - b_j||_2 (b=None: a against itself, exact 0 diagonal), with a
    finite gradient where a_i = b_j."""
    squared = self_squared_distances(a) if b is None else squared_distances(a, b)
    return safe_sqrt(squared)


def cosine_matrix(a, b):
    """(n, m) matrix cos(a_i, b_j); the inputs need not be normalised."""
    return ops.matmul(l2_normalize(a), ops.transpose(l2_normalize(b)))


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


def soft_cross_entropy(targets, logits, axis=-1):
    """-sum_j targets_j * log_softmax(logits)_j along `axis` (targets need not sum to 1)."""
    log_probabilities = logits - ops.logsumexp(logits, axis=axis, keepdims=True)
    return -ops.sum(targets * log_probabilities, axis=axis)


def check_rank(name, x, rank):
    if len(x.shape) != rank:
        raise ValueError(f"{name} must have rank {rank}; received shape {tuple(x.shape)}")


def check_same_size(named_tensors, axis=0, what="number of pairs"):
    """Raise when the static sizes along `axis` differ (unknown sizes are not checked)."""
    sizes = {name: x.shape[axis] for name, x in named_tensors.items() if x is not None}
    known = {name: size for name, size in sizes.items() if size is not None}
    if len(set(known.values())) > 1:
        detail = ", ".join(f"{name}: {size}" for name, size in known.items())
        raise ValueError(f"the {what} must be equal; received {detail}")


def check_non_negative(name, value):
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        raise ValueError(f"{name} must be >= 0; received {name}={value!r}")


def check_positive(name, value):
    """Check a Python number; a tensor (e.g. a learned temperature) is not checked."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
        raise ValueError(f"{name} must be > 0; received {name}={value!r}")


def check_embeddings(**embeddings):
    """Rank-2 embeddings with one static batch size; returns them cast to float32."""
    cast = {}
    for name, x in embeddings.items():
        x = to_float32(x)
        check_rank(name, x, 2)
        cast[name] = x
    check_same_size(cast)
    return cast


def check_labels(labels, embeddings):
    """Labels whose pair count matches the embeddings' (static shapes only)."""
    labels = ops.convert_to_tensor(labels)
    if len(labels.shape) not in (1, 2):
        raise ValueError(
            "labels must be 1-D class indices or 2-D multi-hot; received shape "
            f"{tuple(labels.shape)}"
        )
    check_same_size({"labels": labels, **embeddings})
    return labels


def unpack(y_pred, keys, loss_name):
    """The tensors of `y_pred` (a dict) under `keys`, with a clear error when one is missing."""
    if not isinstance(y_pred, dict):
        raise ValueError(
            f"{loss_name} expects y_pred to be a dict with keys {list(keys)}; received "
            f"{type(y_pred).__name__}"
        )
    missing = [key for key in keys if key not in y_pred]
    if missing:
        raise ValueError(
            f"{loss_name} expects y_pred to be a dict with keys {list(keys)}; missing "
            f"{missing} (received keys {sorted(y_pred)})"
        )
    return [y_pred[key] for key in keys]


def with_learned_temperature(y_pred, options):
    """`options` with y_pred["temperature"] (a model's learned one) replacing the configured."""
    if "temperature" in y_pred:
        return {**options, "temperature": y_pred["temperature"]}
    return options


class DictLossWrapper(keras.losses.Loss):
    """Base of the loss classes: y_true = labels (or None), y_pred = a dict of named tensors.

    `fn(labels, y_pred, **options)` unpacks the dict and returns per-anchor losses (batch,);
    the `Loss` reduction then applies `sample_weight` and averages. The options are kept as
    attributes and returned by `get_config`, so they must be the subclass' constructor args.
    (keras' LossFunctionWrapper is not public API, and its `call` matches y_true's rank to
    y_pred's, which a dict cannot do.)
    """

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **options):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.fn = fn
        self._options = options
        for key, value in options.items():
            setattr(self, key, value)

    def __call__(self, y_true=None, y_pred=None, sample_weight=None):
        # Loss.__call__ converts y_true to a tensor, which None cannot be: an empty dict
        # travels through instead and `call` turns it back into None.
        y_true = {} if y_true is None else y_true
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        labels = None if isinstance(y_true, dict) and not y_true else y_true
        return self.fn(labels, y_pred, **self._options)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction,
                "dtype": self._dtype_policy.name, **self._options}
