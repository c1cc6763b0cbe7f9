"""The download-free digits stand-in, and load_dataset's spec strings."""

import os

import numpy as np
import pytest
from sklearn.datasets import load_digits

from keras_cmr.datasets import load_dataset, load_digits_two_view, save_npz


@pytest.fixture(scope="module")
def digits():
    return load_digits_two_view()


def test_digits_shapes_ranges_and_names(digits):
    assert digits.name == "digits" and digits.val is None
    assert (digits.image_dim, digits.text_dim, digits.num_classes) == (32, 32, 10)
    assert digits.train.num_pairs + digits.test.num_pairs == 1797
    for split in digits.splits.values():
        for features in (split.image, split.text):
            assert features.dtype == np.float32
            assert features.min() >= 0.0 and features.max() <= 1.0
    assert digits.train.image.max() == 1.0  # some pixel reaches 16: scaled by 16, not by max
    assert digits.class_names == tuple("0123456789")


def test_digits_test_split_is_stratified(digits):
    totals = np.bincount(load_digits().target)
    test_counts = np.bincount(digits.test.labels, minlength=10)
    # 20% of each class, to the nearest pair.
    assert np.all(np.abs(test_counts - 0.2 * totals) <= 0.5)
    np.testing.assert_array_equal(np.bincount(digits.train.labels) + test_counts, totals)


def test_digits_views_are_left_and_right_halves(digits):
    # Reassemble 8x8 images from the two views; as a multiset they must be sklearn's digits.
    def reassemble(split):
        left = split.image.reshape(-1, 8, 4)
        right = split.text.reshape(-1, 8, 4)
        return np.concatenate([left, right], axis=2).reshape(len(left), 64)

    rebuilt = np.concatenate([reassemble(digits.train), reassemble(digits.test)])
    rebuilt = np.column_stack([rebuilt, np.concatenate([digits.train.labels, digits.test.labels])])
    source = load_digits()
    expected = np.column_stack([source.data / 16.0, source.target])
    sort = lambda rows: rows[np.lexsort(rows.T[::-1])]  # noqa: E731
    np.testing.assert_allclose(sort(rebuilt), sort(expected), atol=1e-7)


def test_digits_split_is_seeded():
    a, b = load_digits_two_view(seed=1), load_digits_two_view(seed=1)
    np.testing.assert_array_equal(a.test.image, b.test.image)
    c = load_digits_two_view(seed=2, test_fraction=0.3)
    assert not np.array_equal(a.test.labels, c.test.labels[: a.test.num_pairs])
    assert abs(c.test.num_pairs - 0.3 * 1797) <= 10


@pytest.mark.data
def test_load_dataset_forms(tmp_path, wikipedia_dir, digits):
    np.testing.assert_array_equal(load_dataset("digits").test.image, digits.test.image)
    path = str(tmp_path / "d.npz")
    save_npz(digits, path)
    for spec in (f"npz:{path}", path):
        np.testing.assert_array_equal(load_dataset(spec).train.text, digits.train.text)
    wikipedia = load_dataset(f"wikipedia:{os.path.join(wikipedia_dir, 'original')}")
    assert wikipedia.name == "wikipedia" and wikipedia.train.num_pairs == 2173


@pytest.mark.parametrize("spec", ["mnist", "wikipedia:", "csv:data.csv", "digits.txt"])
def test_load_dataset_unknown_spec_lists_accepted_forms(spec):
    with pytest.raises(ValueError, match=r"accepted forms: digits, wikipedia:PATH, npz:PATH"):
        load_dataset(spec)
