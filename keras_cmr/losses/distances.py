"""Distances and cosines of embeddings, in float32, with finite gradients where points meet.

Every loss computes in float32 whatever its inputs' dtype (float16 and bfloat16 overflow or lose
the small differences that distances and soft-max terms need) and returns float32.
"""

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
