"""CrossModalSplit / CrossModalDataset: bad input is refused with a message that says where."""

import numpy as np
import pytest

from keras_cmr.datasets import CrossModalDataset, CrossModalSplit


def make_split(rng, n=12, image_dim=5, text_dim=3, num_classes=3, name="train"):
    labels = np.arange(n) % num_classes
    return CrossModalSplit(
        rng.normal(size=(n, image_dim)), rng.normal(size=(n, text_dim)), labels, name=name
    )


def test_split_stores_float32_features_and_int64_labels(rng):
    image = rng.normal(size=(4, 5))  # float64 in
    split = CrossModalSplit(image, rng.integers(0, 9, size=(4, 3)), [0.0, 1.0, 2.0, 1.0])
    assert split.image.dtype == np.float32 and split.text.dtype == np.float32
    assert split.labels.dtype == np.int64
    np.testing.assert_array_equal(split.labels, [0, 1, 2, 1])
    np.testing.assert_allclose(split.image, image, rtol=1e-6)
    assert split.num_pairs == 4 and not split.is_multilabel
    assert (split.image_dim, split.text_dim) == (5, 3)


def test_split_accepts_multi_hot(rng):
    labels = np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32)
    split = CrossModalSplit(rng.normal(size=(2, 4)), rng.normal(size=(2, 2)), labels)
    assert split.is_multilabel
    np.testing.assert_array_equal(split.labels, labels.astype(int))


@pytest.mark.parametrize(
    "image_shape, text_shape, labels, error, match",
    [
        ((5, 4), (6, 3), np.zeros(5), ValueError, r"5 image rows, 6 text rows and 5 labels"),
        ((5, 4), (5, 3), np.zeros(4), ValueError, r"5 image rows, 5 text rows and 4 labels"),
        ((5,), (5, 3), np.zeros(5), ValueError, r"image_train must be a 2-D"),
        ((5, 4), (5, 3, 1), np.zeros(5), ValueError, r"text_train must be a 2-D"),
        ((5, 0), (5, 3), np.zeros(5), ValueError, r"at least one feature"),
        ((0, 4), (0, 3), np.zeros(0), ValueError, r"'train' has no pairs"),
        ((5, 4), (5, 3), np.array([0, 1, 1.5, 2, 0]), ValueError,
         r"label_train must be integer-valued, row 2 holds 1.5"),
        ((5, 4), (5, 3), np.zeros((5, 2, 2)), ValueError, r"label_train must be 1-D"),
        ((2, 4), (2, 3), np.array([[0, 1], [2, 0]]), ValueError,
         r"multi-hot 0/1, row 1 holds \[2, 0\]"),
        ((2, 4), (2, 3), np.array(["a", "b"]), TypeError, r"label_train must hold real"),
    ],
)
def test_split_rejects_bad_input(rng, image_shape, text_shape, labels, error, match):
    with pytest.raises(error, match=match):
        CrossModalSplit(
            rng.normal(size=image_shape), rng.normal(size=text_shape), labels, name="train"
        )


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_split_names_array_and_row_of_non_finite_value(rng, bad_value):
    image = rng.normal(size=(6, 4))
    image[3, 2] = bad_value
    with pytest.raises(ValueError, match=r"image_train has a NaN or infinite value at row 3"):
        CrossModalSplit(image, rng.normal(size=(6, 3)), np.zeros(6), name="train")
    text = rng.normal(size=(6, 3))
    text[5, 0] = bad_value
    with pytest.raises(ValueError, match=r"text_test has a NaN or infinite value at row 5"):
        CrossModalSplit(rng.normal(size=(6, 4)), text, np.zeros(6), name="test")


def test_split_rejects_value_that_overflows_float32(rng):
    image = rng.normal(size=(3, 2))
    image[1, 1] = 1e300  # finite in float64, inf once stored as float32
    with pytest.raises(ValueError, match=r"image_train .* at row 1"):
        CrossModalSplit(image, rng.normal(size=(3, 2)), np.zeros(3), name="train")


def test_take_selects_rows(rng):
    split = make_split(rng)
    part = split.take([4, 1], name="val")
    assert part.name == "val" and part.num_pairs == 2
    np.testing.assert_array_equal(part.image, split.image[[4, 1]])
    np.testing.assert_array_equal(part.labels, [1, 1])


def test_dataset_properties_and_inferred_num_classes(rng):
    dataset = CrossModalDataset(
        make_split(rng, num_classes=3), make_split(rng, n=5, num_classes=4, name="test"),
        name="toy", allow_unseen_classes=True,
    )
    assert dataset.num_classes == 4  # the largest label over all splits (3, in test) + 1
    assert (dataset.image_dim, dataset.text_dim) == (5, 3)
    assert list(dataset.splits) == ["train", "test"] and not dataset.is_multilabel
    summary = dataset.summary()
    for expected in ("toy", "image dim 5", "text dim 3", "4 classes", "train", "12", "test"):
        assert expected in summary


def test_dataset_num_classes_from_class_names(rng):
    dataset = CrossModalDataset(
        make_split(rng), make_split(rng, name="test"), class_names=["a", "b", "c", "d", "e"]
    )
    assert dataset.num_classes == 5
    assert "a, b, c, d, e" in dataset.summary()


@pytest.mark.parametrize(
    "modality, kwargs", [("image", {"image_dim": 6}), ("text", {"text_dim": 2})]
)
def test_dataset_rejects_differing_dims(rng, modality, kwargs):
    with pytest.raises(ValueError, match=rf"split 'test' has {modality} dim \d but train has"):
        CrossModalDataset(make_split(rng), make_split(rng, name="test", **kwargs))
    with pytest.raises(ValueError, match=rf"split 'val' has {modality} dim"):
        CrossModalDataset(
            make_split(rng), make_split(rng, name="test"), val=make_split(rng, **kwargs)
        )


def test_dataset_rejects_label_out_of_range(rng):
    test = CrossModalSplit(rng.normal(size=(4, 5)), rng.normal(size=(4, 3)), [0, 1, 7, 9])
    with pytest.raises(ValueError, match=r"split 'test' row 2 has label 7, outside \[0, 3\)"):
        CrossModalDataset(make_split(rng), test, num_classes=3)
    negative = CrossModalSplit(rng.normal(size=(3, 5)), rng.normal(size=(3, 3)), [0, -1, 1])
    with pytest.raises(ValueError, match=r"split 'train' row 1 has label -1"):
        CrossModalDataset(negative, make_split(rng, name="test"))


def test_dataset_multi_hot_width_must_match_num_classes(rng):
    def multi_hot(width):
        labels = np.eye(width, dtype=int)[np.arange(6) % width]
        return CrossModalSplit(rng.normal(size=(6, 5)), rng.normal(size=(6, 3)), labels)

    dataset = CrossModalDataset(multi_hot(4), multi_hot(4))
    assert dataset.is_multilabel and dataset.num_classes == 4
    with pytest.raises(ValueError, match=r"split 'test' has multi-hot labels of width 3 but "
                                         r"num_classes is 4"):
        CrossModalDataset(multi_hot(4), multi_hot(3))
    with pytest.raises(ValueError, match=r"split 'train' has multi-hot labels of width 4 but "
                                         r"num_classes is 5"):
        CrossModalDataset(multi_hot(4), multi_hot(4), num_classes=5)
    with pytest.raises(ValueError, match=r"split 'test' is single-label but train is multi-hot"):
        CrossModalDataset(multi_hot(4), make_split(rng, name="test"))


def test_dataset_rejects_wrong_class_names_length_and_bad_types(rng):
    train, test = make_split(rng), make_split(rng, name="test")
    with pytest.raises(ValueError, match=r"class_names has 2 names but there are 3 classes"):
        CrossModalDataset(train, test, num_classes=3, class_names=["a", "b"])
    with pytest.raises(TypeError, match=r"test must be a CrossModalSplit"):
        CrossModalDataset(train, (test.image, test.text, test.labels))
    with pytest.raises(TypeError, match=r"num_classes must be an integer"):
        CrossModalDataset(train, test, num_classes=3.0)
    with pytest.raises(TypeError, match=r"class_names must be a sequence of names"):
        CrossModalDataset(train, test, class_names="abc")


def test_with_validation_carves_a_disjoint_stratified_part_of_train(rng):
    train = make_split(rng, n=60, num_classes=3)
    dataset = CrossModalDataset(train, make_split(rng, name="test"), class_names=["x", "y", "z"])
    carved = dataset.with_validation(fraction=0.2, seed=3)
    assert carved.val is not None and dataset.val is None  # the original is left untouched
    assert list(carved.splits) == ["train", "val", "test"]
    np.testing.assert_array_equal(np.bincount(carved.val.labels), [4, 4, 4])  # 20% of 20 each
    assert carved.train.num_pairs == 48 and carved.class_names == ("x", "y", "z")
    # Image rows are distinct random vectors, so they identify pairs: disjoint and complete.
    rows = {tuple(r) for r in np.concatenate([carved.train.image, carved.val.image])}
    assert rows == {tuple(r) for r in train.image} and len(rows) == 60
    assert carved.with_validation() is carved
    again = dataset.with_validation(fraction=0.2, seed=3)
    np.testing.assert_array_equal(again.val.image, carved.val.image)
