"""Checks and helpers shared by every keras_cmr package (public within the library).

- `checks`: argument and array validation (positive integers, real 2-D rows, finite rows,
  class-id / multi-hot labels), each raising an error that names the argument.
- `arrays`: L2 normalisation, numpy (host-side metrics and indexes) and `keras.ops` (in graphs).
- `files`: atomic writes of files and folders, and reading a JSON object with a clear error.
"""

from keras_cmr.utils.arrays import l2_normalize, unit_rows
from keras_cmr.utils.checks import (
    check_finite_rows,
    check_labels,
    check_num_classes,
    check_positive_int,
    check_real,
    check_seed,
    to_numpy,
)
from keras_cmr.utils.files import atomic_directory, atomic_path, read_json_object

__all__ = ["atomic_directory", "atomic_path", "check_finite_rows", "check_labels",
           "check_num_classes", "check_positive_int", "check_real", "check_seed", "l2_normalize",
           "read_json_object", "to_numpy", "unit_rows"]
