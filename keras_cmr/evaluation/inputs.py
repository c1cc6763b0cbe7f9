"""Validation of what the metrics are given: embeddings to unit rows, labels to one form.

Every error names the argument as the caller passed it (e.g. "`text_embeddings` holds NaN or
inf, first in row 1"), so `keras_cmr.evaluation` and `keras_cmr.retrieval` report bad input
alike.
"""

import numpy as np

from keras_cmr.utils.arrays import unit_rows
from keras_cmr.utils.checks import check_real, to_numpy


def prepare_embeddings(x, name):
    """A validated float32 copy of `x` with unit-norm rows (zero rows stay zero)."""
    x = to_numpy(x, name)
    if x.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D array (rows, dims), got shape {x.shape}.")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"`{name}` is empty (shape {x.shape}): nothing to retrieve.")
    check_real(x, f"`{name}`", ValueError)
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        raise ValueError(
            f"`{name}` holds NaN or inf, first in row {int(np.argmin(finite))}."
        )
    return unit_rows(x)


def prepare_labels(y, name, rows, rows_name):
    """Class ids as int64 (1-D) or multi-hot labels as 0/1 float32 (2-D), validated."""
    y = to_numpy(y, name)
    if y.ndim not in (1, 2):
        raise ValueError(
            f"`{name}` must be 1-D class ids or 2-D multi-hot labels, got shape {y.shape}."
        )
    if y.shape[0] != rows:
        raise ValueError(f"`{name}` has {y.shape[0]} rows but `{rows_name}` has {rows}.")
    if y.dtype.kind == "f":
        integral = np.isfinite(y) & (y == np.round(y))
        if not integral.all():
            bad = y.ravel()[np.argmin(integral.ravel())]
            raise ValueError(f"`{name}` must hold integer labels, found {bad!r}.")
    elif y.dtype.kind not in "biu":
        raise ValueError(f"`{name}` must hold integer labels, got dtype {y.dtype}.")
    if y.ndim == 1:
        return y.astype(np.int64)
    if not np.isin(y, (0, 1)).all():
        raise ValueError(
            f"`{name}` is 2-D, so it must be multi-hot (0/1 entries); pass class ids as 1-D."
        )
    return y.astype(np.float32)


def check_label_forms(query_labels, gallery_labels, query_name, gallery_name):
    """ValueError unless both label arrays are 1-D ids, or 2-D multi-hot of equal width."""
    if query_labels.ndim != gallery_labels.ndim:
        forms = {1: "1-D class ids", 2: "2-D multi-hot"}
        raise ValueError(
            f"`{query_name}` are {forms[query_labels.ndim]} but `{gallery_name}` are "
            f"{forms[gallery_labels.ndim]}; pass both in the same form."
        )
    if query_labels.ndim == 2 and query_labels.shape[1] != gallery_labels.shape[1]:
        raise ValueError(
            f"`{query_name}` has {query_labels.shape[1]} label columns but `{gallery_name}` "
            f"has {gallery_labels.shape[1]}."
        )


def prepare_side(embeddings, labels, name, labels_name):
    """(unit-row embeddings, labels) of one side, the labels checked against its row count."""
    x = prepare_embeddings(embeddings, name)
    return x, prepare_labels(labels, labels_name, len(x), name)


def check_dims(queries, gallery, query_name, gallery_name):
    """ValueError unless both sides' embeddings have the same width."""
    if queries.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"`{query_name}` and `{gallery_name}` have different embedding sizes: "
            f"{queries.shape[1]} vs {gallery.shape[1]}."
        )
