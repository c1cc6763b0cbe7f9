"""load_npz / save_npz: round trips, refused pickles, missing keys, damaged files, atomic writes."""

import os

import numpy as np
import pytest

from keras_cmr.datasets import CrossModalDataset, CrossModalSplit, load_npz, save_npz


def make_dataset(rng, with_val=False, multi_hot=False):
    def split(n, name):
        labels = np.arange(n) % 4
        if multi_hot:
            labels = np.eye(4, dtype=int)[labels]
        return CrossModalSplit(
            rng.normal(size=(n, 6)), rng.random(size=(n, 3)), labels, name=name
        )

    return CrossModalDataset(
        split(20, "train"), split(8, "test"), val=split(4, "val") if with_val else None,
        num_classes=5 if not multi_hot else 4,  # class 4 (single-label) has no pair
        class_names=None if multi_hot else ["a", "b", "c", "d", "e"], name="toy",
    )


def raw_arrays(rng, **extra):
    arrays = {
        f"{kind}_{split}": value
        for split, n in (("train", 6), ("test", 4))
        for kind, value in (
            ("image", rng.normal(size=(n, 3))), ("text", rng.normal(size=(n, 2))),
            ("label", np.arange(n) % 2),
        )
    }
    arrays.update(extra)
    return arrays


@pytest.mark.parametrize("with_val, multi_hot", [(False, False), (True, False), (True, True)])
def test_round_trip(rng, tmp_path, with_val, multi_hot):
    dataset = make_dataset(rng, with_val=with_val, multi_hot=multi_hot)
    path = str(tmp_path / "toy_data.npz")
    assert save_npz(dataset, path) == path
    loaded = load_npz(path)
    assert list(loaded.splits) == list(dataset.splits)
    for name, split in dataset.splits.items():
        np.testing.assert_array_equal(loaded.splits[name].image, split.image)
        np.testing.assert_array_equal(loaded.splits[name].text, split.text)
        np.testing.assert_array_equal(loaded.splits[name].labels, split.labels)
    assert loaded.num_classes == dataset.num_classes
    assert loaded.class_names == dataset.class_names and loaded.name == "toy"
    assert load_npz(path, name="renamed").name == "renamed"
    assert os.listdir(tmp_path) == ["toy_data.npz"]  # no temporary file left behind


def test_plain_npz_without_optional_keys(rng, tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, **raw_arrays(rng, extra_ids=np.array(["x"] * 6)))
    loaded = load_npz(path)
    assert loaded.name == "plain" and loaded.num_classes == 2 and loaded.val is None
    assert loaded.class_names is None and loaded.train.num_pairs == 6


def test_pickled_object_array_is_refused(rng, tmp_path):
    path = tmp_path / "pickled.npz"
    arrays = raw_arrays(rng)
    arrays["image_train"] = np.array([[1.0, 2.0, 3.0]] * 6, dtype=object)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"'image_train' is an object array.*pickled arrays are "
                                         r"refused"):
        load_npz(path)


def test_missing_keys_are_listed_with_the_keys_found(rng, tmp_path):
    path = tmp_path / "missing.npz"
    arrays = raw_arrays(rng)
    del arrays["text_test"], arrays["label_train"]
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"lacks the keys \['label_train', 'text_test'\]; "
                                         r"found \['image_test', 'image_train', 'label_test', "
                                         r"'text_train'\]"):
        load_npz(path)


def test_incomplete_validation_arrays_are_refused(rng, tmp_path):
    path = tmp_path / "partial_val.npz"
    np.savez(path, **raw_arrays(rng, image_val=np.ones((2, 3)), label_val=np.zeros(2)))
    with pytest.raises(ValueError, match=r"has \['image_val', 'label_val'\] but not all"):
        load_npz(path)


def test_truncated_file_is_reported_with_its_name(rng, tmp_path):
    full = tmp_path / "full.npz"
    save_npz(make_dataset(rng, with_val=True), full)
    data = full.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated\.npz.* truncated or corrupt"):
        load_npz(truncated)


def test_non_zip_file_and_missing_file(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not an archive at all")
    with pytest.raises(ValueError, match=r"garbage\.npz' is not a \.npz \(zip\) archive"):
        load_npz(garbage)
    with pytest.raises(FileNotFoundError, match=r"no \.npz file at .*absent\.npz"):
        load_npz(tmp_path / "absent.npz")


def test_failed_write_keeps_the_old_file_intact(rng, tmp_path, monkeypatch):
    path = tmp_path / "data.npz"
    save_npz(make_dataset(rng), path)
    before = path.read_bytes()

    def crash_midway(handle, **arrays):
        handle.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        save_npz(make_dataset(rng, with_val=True), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["data.npz"]


def test_save_rejects_non_dataset(tmp_path):
    with pytest.raises(TypeError, match=r"dataset must be a CrossModalDataset"):
        save_npz({"image_train": np.ones((2, 2))}, tmp_path / "x.npz")
