"""Argument and array checks shared across keras_cmr; each error names the bad argument.

The scalar checks are framework-free and live in `keras_cmr.options.checks`; the array checks,
which may meet backend tensors, live here.
"""

import numbers

import keras
import numpy as np

from keras_cmr.options.checks import check_positive_int, check_seed

__all__ = ["check_finite_rows", "check_labels", "check_num_classes", "check_positive_int",
           "check_real", "check_seed", "to_numpy"]


def to_numpy(x, name):
    """`x` as a numpy array (tensors converted), or ValueError naming `name` (e.g. ragged lists)."""
    if isinstance(x, np.ndarray):
        return x
    try:
        return np.asarray(keras.ops.convert_to_numpy(x))
    except (ValueError, TypeError) as error:
        raise ValueError(f"`{name}` could not be read as an array: {error}") from error


def check_real(array, name, error=TypeError):
    """Rejects strings, objects and complex numbers, which float32 would mangle or refuse."""
    if array.dtype.kind not in "biuf":
        raise error(f"{name} must hold real numbers, got dtype {array.dtype}")


def check_finite_rows(rows, name, first_row=0):
    """`rows` as float32, or ValueError naming the first row holding NaN or inf.

    `first_row` is the position of `rows` in a larger array (a chunk), so the error names the
    row of the whole array.
    """
    rows = np.asarray(rows, dtype=np.float32)
    # A row's sum is finite unless the row holds NaN or inf or the sum overflows: one pass
    # without a bool temporary, and only the flagged rows get the exact test.
    flagged = np.flatnonzero(~np.isfinite(np.einsum("ij->i", rows)))
    bad = flagged[~np.isfinite(rows[flagged]).all(axis=1)]
    if len(bad):
        raise ValueError(f"`{name}` holds NaN or inf, first in row {first_row + int(bad[0])}.")
    return rows


def check_labels(array, name):
    """Labels as int64: integer-valued class indices (n,) or 0/1 multi-hot rows (n, C).

    Raises TypeError for non-real dtypes, ValueError for another rank, a non-integer value or
    a multi-hot entry other than 0/1, naming `name` and the first bad row.
    """
    array = np.asarray(array)
    check_real(array, name)
    if array.ndim not in (1, 2):
        raise ValueError(
            f"{name} must be 1-D class indices (n,) or 2-D multi-hot (n, C), got shape "
            f"{array.shape}"
        )
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array) | (array != np.round(array))
        if bad.any():
            row = int(np.flatnonzero(bad.reshape(len(array), -1).any(axis=1))[0])
            raise ValueError(
                f"{name} must be integer-valued, row {row} holds {array[row].tolist()}"
            )
    array = array.astype(np.int64)
    if array.ndim == 2:
        bad_rows = ((array != 0) & (array != 1)).any(axis=1)
        if bad_rows.any():
            row = int(np.flatnonzero(bad_rows)[0])
            raise ValueError(
                f"{name} is 2-D so it must be multi-hot 0/1, row {row} holds "
                f"{array[row].tolist()}; pass class indices as a 1-D array"
            )
    return array


def check_num_classes(num_classes):
    """`num_classes` as an int: TypeError unless an integer (bools refused), ValueError if < 1."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise TypeError(f"num_classes must be an integer, got {num_classes!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return int(num_classes)
