"""keras_cmr.utils: shared checks, L2 normalisers and atomic writers, against numpy."""

import json
import os

import numpy as np
import pytest
from keras import ops

from keras_cmr.utils import (
    atomic_directory,
    atomic_path,
    check_finite_rows,
    check_labels,
    check_num_classes,
    check_positive_int,
    check_seed,
    l2_normalize,
    read_json_object,
    unit_rows,
)


def test_unit_rows_matches_numpy_and_survives_extreme_magnitudes():
    rows = np.array([[3.0, 4.0], [0.0, 0.0], [1e-30, -1e-30], [3e38, 3e38], [-2.0, 0.0]],
                    np.float64)
    expected = np.array([[0.6, 0.8], [0, 0], [1, -1], [1, 1], [-1, 0]]) / np.array(
        [1, 1, np.sqrt(2), np.sqrt(2), 1])[:, None]
    got = unit_rows(rows)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)
    float32_rows = rows.astype(np.float32)
    np.testing.assert_allclose(unit_rows(float32_rows), expected, rtol=1e-6, atol=0)
    assert float32_rows[0, 0] == 3.0  # the input is not modified


def test_l2_normalize_matches_numpy_and_keeps_zero_vectors():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, -1.0]], np.float32)
    got = ops.convert_to_numpy(l2_normalize(ops.convert_to_tensor(x)))
    np.testing.assert_allclose(got, [[0.6, 0.8], [0, 0], [2**-0.5, -(2**-0.5)]], rtol=1e-6)
    columns = ops.convert_to_numpy(l2_normalize(ops.convert_to_tensor(x), axis=0))
    np.testing.assert_allclose(columns, x / np.linalg.norm(x, axis=0), rtol=1e-6)


def test_integer_checks_name_the_argument():
    assert check_positive_int(np.int64(3), "`k`") == 3 and check_seed(0) == 0
    for bad in (0, -1, 2.0, True, "3"):
        with pytest.raises(ValueError, match=rf"`k` must be an integer >= 1, got {bad!r}"):
            check_positive_int(bad, "`k`")
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        check_seed(-1)
    with pytest.raises(TypeError, match="num_classes must be an integer"):
        check_num_classes(2.5)
    with pytest.raises(ValueError, match="num_classes must be >= 1, got 0"):
        check_num_classes(0)


def test_check_labels_accepts_ids_and_multi_hot_and_names_the_bad_row():
    np.testing.assert_array_equal(check_labels([0.0, 2.0, 1.0], "y"), [0, 2, 1])
    assert check_labels(np.eye(3), "y").dtype == np.int64
    with pytest.raises(ValueError, match=r"y must be integer-valued, row 1 holds 1.5"):
        check_labels([0, 1.5], "y")
    with pytest.raises(ValueError, match=r"y is 2-D so it must be multi-hot 0/1, row 0"):
        check_labels([[2, 0]], "y")
    with pytest.raises(TypeError, match="y must hold real numbers"):
        check_labels(["a"], "y")


def test_atomic_path_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(str(path)) as temporary:
        with open(temporary, "w") as stream:
            stream.write("half")
        raise RuntimeError("crash")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["out.json"]
    with atomic_path(str(path)) as temporary:
        with open(temporary, "w") as stream:
            stream.write("new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["out.json"]


def test_atomic_directory_replaces_its_own_folder_only(tmp_path):
    target = tmp_path / "index"
    for content in ("first", "second"):
        with atomic_directory(str(target), "marker", "a test folder") as temporary:
            open(os.path.join(temporary, "marker"), "w").close()
            with open(os.path.join(temporary, "data"), "w") as stream:
                stream.write(content)
    assert (target / "data").read_text() == "second"
    assert sorted(os.listdir(tmp_path)) == ["index"]  # no temporary or old folder left
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_text("x")
    with pytest.raises(ValueError, match="is not a test folder: refusing to replace it"):
        with atomic_directory(str(foreign), "marker", "a test folder"):
            pass
    assert (foreign / "cat.jpg").read_text() == "x"


def test_read_json_object_names_the_file_in_every_error(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"seeds": [0, 1]}))
    assert read_json_object(str(good), "--config") == {"seeds": [0, 1]}
    (tmp_path / "list.json").write_text("[1]")
    (tmp_path / "bad.json").write_text("{")
    cases = [("missing.json", "--config: no such file"), ("bad.json", "not valid JSON"),
             ("list.json", "expected a JSON object, got list")]
    for name, message in cases:
        with pytest.raises(ValueError, match=message):
            read_json_object(str(tmp_path / name), "--config")


def test_check_finite_rows_passes_overflowing_sums_and_names_the_first_bad_row():
    rows = np.ones((4, 3), np.float32)
    rows[0] = 3e38  # finite values whose sum overflows to inf
    assert check_finite_rows(rows, "rows") is rows
    rows[2, 1] = np.nan
    rows[3, 0] = -np.inf
    with pytest.raises(ValueError, match="`rows` holds NaN or inf, first in row 12"):
        check_finite_rows(rows, "rows", first_row=10)


def test_unit_rows_in_place_equals_the_copy():
    rows = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    rows[1] = 0.0
    expected = unit_rows(rows)
    result = unit_rows(rows, copy=False)
    assert result is rows
    np.testing.assert_array_equal(result, expected)
