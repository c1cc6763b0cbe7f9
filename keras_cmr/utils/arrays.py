"""L2 normalisation: numpy rows for host-side metrics and indexes, `keras.ops` inside graphs.

Both map a zero vector to zero (its similarity to everything is then 0) instead of NaN.
"""

import numpy as np
from keras import ops


def unit_rows(rows, copy=True):
    """float32 copy of the 2-D `rows` divided by their L2 norms; a zero row stays zero.

    Norms are taken in float64 for float64 input, else float32; rows whose squares overflow or
    underflow there are first divided by their largest magnitude, so every non-zero finite row
    ends with norm 1. `copy=False` divides float32 or float64 `rows` in place (a chunk the
    caller owns), sparing a pass over them.
    """
    rows = np.asarray(rows)
    rows = rows.astype(np.float64 if rows.dtype == np.float64 else np.float32, copy=copy)
    norm = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    extreme = ~np.isfinite(norm) | (norm < 1e-15)
    if extreme.any():
        scaled = rows[extreme]
        peak = np.abs(scaled).max(axis=1, keepdims=True)
        scaled /= np.where(peak > 0, peak, 1)
        rows[extreme] = scaled
        norm[extreme] = np.sqrt(np.einsum("ij,ij->i", scaled, scaled))
    rows /= np.where(norm > 0, norm, 1)[:, None]
    return np.ascontiguousarray(rows, dtype=np.float32)


def l2_normalize(x, axis=-1, epsilon=1e-12):
    """x / ||x||_2 along `axis` (a `keras.ops` tensor); a zero vector stays zero.

    `epsilon` floors the squared norm: vectors with a smaller squared norm are divided by
    sqrt(epsilon) instead (losses pass 1e-30 so that only an exact zero is floored).
    """
    squared_norm = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(squared_norm, ops.cast(epsilon, x.dtype)))
