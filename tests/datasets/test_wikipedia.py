"""load_wikipedia on the real data: the original release and the converted .npz must agree."""

import os
import shutil

import numpy as np
import pytest
import scipy.io

from keras_cmr.datasets import CrossModalDataset, CrossModalSplit, load_wikipedia, save_npz

TRAIN_COUNTS = [138, 272, 244, 248, 202, 178, 186, 144, 214, 347]  # data README
TEST_COUNTS = [34, 88, 96, 85, 65, 58, 51, 41, 71, 104]
CLASS_NAMES = ("art", "biology", "geography", "history", "literature", "media", "music",
               "royalty", "sport", "warfare")
RELEASE_FILES = ("raw_features.mat", "trainset_txt_img_cat.list", "testset_txt_img_cat.list",
                 "categories.list")


@pytest.fixture(scope="module")
def original(wikipedia_dir):
    return load_wikipedia(os.path.join(wikipedia_dir, "original"))


@pytest.fixture(scope="module")
def converted(wikipedia_dir):
    return load_wikipedia(os.path.join(wikipedia_dir, "wikipedia_sift_lda.npz"))


def copy_release(wikipedia_dir, destination):
    os.makedirs(destination, exist_ok=True)
    for name in RELEASE_FILES:
        shutil.copy(os.path.join(wikipedia_dir, "original", name), destination)
    return destination


@pytest.mark.data
def test_original_release_shapes_labels_and_names(original):
    assert original.name == "wikipedia" and original.val is None
    assert original.train.image.shape == (2173, 128) and original.train.text.shape == (2173, 10)
    assert original.test.image.shape == (693, 128) and original.test.text.shape == (693, 10)
    np.testing.assert_array_equal(np.bincount(original.train.labels), TRAIN_COUNTS)
    np.testing.assert_array_equal(np.bincount(original.test.labels), TEST_COUNTS)
    assert original.class_names == CLASS_NAMES and original.num_classes == 10


@pytest.mark.data
def test_original_matches_the_raw_matrices(wikipedia_dir, original):
    raw = scipy.io.loadmat(os.path.join(wikipedia_dir, "original", "raw_features.mat"))
    np.testing.assert_allclose(original.train.image, raw["I_tr"], atol=1e-6)
    np.testing.assert_allclose(original.test.text, raw["T_te"], atol=1e-6)
    # Row 0 of the train .list file has class 6 (1-based), per the release.
    with open(os.path.join(wikipedia_dir, "original", "trainset_txt_img_cat.list")) as handle:
        first_class = int(handle.readline().split()[2])
    assert original.train.labels[0] == first_class - 1


@pytest.mark.data
def test_original_and_npz_agree(original, converted):
    assert converted.name == "wikipedia" and converted.class_names == CLASS_NAMES
    for name in ("train", "test"):
        a, b = original.splits[name], converted.splits[name]
        assert a.image.shape == b.image.shape and a.text.shape == b.text.shape
        np.testing.assert_allclose(a.image, b.image, atol=1e-6)
        np.testing.assert_allclose(a.text, b.text, atol=1e-6)
        np.testing.assert_array_equal(a.labels, b.labels)


@pytest.mark.data
def test_folder_prefers_npz_and_falls_back_to_original(wikipedia_dir, tmp_path, converted):
    from_folder = load_wikipedia(wikipedia_dir)
    np.testing.assert_array_equal(from_folder.test.text, converted.test.text)
    # A folder holding only original/: the release is read from there.
    copy_release(wikipedia_dir, tmp_path / "only_original" / "original")
    fallback = load_wikipedia(tmp_path / "only_original")
    np.testing.assert_array_equal(np.bincount(fallback.train.labels), TRAIN_COUNTS)
    # The .npz wins when both are there: a tiny marker data set under the npz name proves it.
    marker = CrossModalDataset(
        CrossModalSplit(np.ones((3, 2)), np.ones((3, 1)), [0, 1, 1]),
        CrossModalSplit(np.ones((2, 2)), np.ones((2, 1)), [1, 0]),
    )
    save_npz(marker, tmp_path / "only_original" / "wikipedia_sift_lda.npz")
    both = load_wikipedia(tmp_path / "only_original")
    assert both.train.num_pairs == 3 and both.name == "wikipedia"


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does_not_exist' does not exist"):
        load_wikipedia(tmp_path / "does_not_exist")
    expected_npz = os.path.join(str(tmp_path), "wikipedia_sift_lda.npz")
    with pytest.raises(FileNotFoundError, match=rf"no Wikipedia data in .*{expected_npz}"):
        load_wikipedia(tmp_path)


@pytest.mark.data
@pytest.mark.parametrize("missing", ["categories.list", "testset_txt_img_cat.list"])
def test_release_with_a_missing_file_names_its_exact_path(wikipedia_dir, tmp_path, missing):
    release = copy_release(wikipedia_dir, tmp_path / "release")
    os.remove(release / missing)
    with pytest.raises(FileNotFoundError, match=rf"{release / missing}' is missing"):
        load_wikipedia(release)


@pytest.mark.data
def test_row_count_mismatch_names_both_files(wikipedia_dir, tmp_path):
    release = copy_release(wikipedia_dir, tmp_path / "release")
    list_path = release / "trainset_txt_img_cat.list"
    lines = list_path.read_text().splitlines(keepends=True)
    list_path.write_text("".join(lines[:-1]))
    with pytest.raises(ValueError, match=r"raw_features\.mat' has 2173 rows in I_tr and 2173 in "
                                         r"T_tr, but .*trainset_txt_img_cat\.list' lists 2172"):
        load_wikipedia(release)


@pytest.mark.data
def test_malformed_list_line_is_reported(wikipedia_dir, tmp_path):
    release = copy_release(wikipedia_dir, tmp_path / "release")
    list_path = release / "testset_txt_img_cat.list"
    lines = list_path.read_text().splitlines(keepends=True)
    lines[4] = "abc def 11\n"  # class 11 does not exist
    list_path.write_text("".join(lines))
    with pytest.raises(ValueError, match=r"testset_txt_img_cat\.list' line 5: expected"):
        load_wikipedia(release)
