"""Loader for the Wikipedia cross-modal data set (Rasiwasia et al., ACM MM 2010).

128-d SIFT bag-of-visual-words image histograms and 10-d LDA text topic proportions, 10
classes, the standard 2,173 train / 693 test pairs. Two forms are read: the files of the
original SVCL release (`raw_features.mat` and the `.list` files) and the converted `.npz`.
"""

import os

import numpy as np
import scipy.io

from keras_cmr.datasets.container import CrossModalDataset, CrossModalSplit
from keras_cmr.datasets.npz import load_npz

NAME = "wikipedia"
NPZ_FILE = "wikipedia_sift_lda.npz"
ORIGINAL_FOLDER = "original"
MAT_FILE = "raw_features.mat"
LIST_FILES = {"train": "trainset_txt_img_cat.list", "test": "testset_txt_img_cat.list"}
CATEGORIES_FILE = "categories.list"
MAT_KEYS = {"train": ("I_tr", "T_tr"), "test": ("I_te", "T_te")}
RELEASE_FILES = (MAT_FILE, *LIST_FILES.values(), CATEGORIES_FILE)


def load_wikipedia(path):
    """Load the Wikipedia data set from the original release or from the converted `.npz`.

    Args:
        path: one of: the release folder holding `raw_features.mat`,
            `trainset_txt_img_cat.list`, `testset_txt_img_cat.list` and `categories.list`; the
            converted `.npz` file; or a folder holding `wikipedia_sift_lda.npz` and/or the
            release in `original/` (the `.npz` is preferred when both are there).

    Returns:
        A `CrossModalDataset` named "wikipedia" with train and test splits, labels 0..9 (the
        release's 1..10 minus one) and the class names of `categories.list`.

    Raises:
        FileNotFoundError: if `path` or a file the release needs is missing; the message names
            the exact path expected.
        ValueError: if the `.mat` row counts disagree with the `.list` files, a `.list` line is
            malformed, or a file is corrupt.
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        if path.endswith(".npz"):
            return load_npz(path, name=NAME)
        if os.path.basename(path) == MAT_FILE:
            return _load_release(os.path.dirname(path))
        raise ValueError(
            f"{path!r} is neither a .npz file nor {MAT_FILE}; pass the .npz, the release "
            "folder, or the folder holding either"
        )
    looked_for = (
        f"{os.path.join(path, NPZ_FILE)!r}, the release in "
        f"{os.path.join(path, ORIGINAL_FOLDER)!r}, or the release files {list(RELEASE_FILES)} "
        f"directly in {path!r}"
    )
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"{path!r} does not exist; load_wikipedia expects a .npz file or a folder "
            f"holding {looked_for}"
        )
    if os.path.isfile(os.path.join(path, NPZ_FILE)):
        return load_npz(os.path.join(path, NPZ_FILE), name=NAME)
    if os.path.isfile(os.path.join(path, MAT_FILE)):
        return _load_release(path)
    if os.path.isfile(os.path.join(path, ORIGINAL_FOLDER, MAT_FILE)):
        return _load_release(os.path.join(path, ORIGINAL_FOLDER))
    raise FileNotFoundError(f"no Wikipedia data in {path!r}: expected {looked_for}")


def _load_release(folder):
    """Read the original release's files in `folder`."""
    for file_name in RELEASE_FILES:
        expected = os.path.join(folder, file_name)
        if not os.path.isfile(expected):
            raise FileNotFoundError(
                f"{expected!r} is missing: the Wikipedia release folder must hold "
                f"{list(RELEASE_FILES)}"
            )
    class_names = _read_categories(os.path.join(folder, CATEGORIES_FILE))
    mat_path = os.path.join(folder, MAT_FILE)
    try:
        matrices = scipy.io.loadmat(mat_path)
    except Exception as error:  # scipy raises several types for a damaged file
        raise ValueError(
            f"{mat_path!r} could not be read as a MAT file (truncated or corrupt?): {error}"
        ) from error

    splits = {}
    for split_name, keys in MAT_KEYS.items():
        missing = [key for key in keys if key not in matrices]
        if missing:
            raise ValueError(f"{mat_path!r} lacks the matrices {missing} (needs I_tr, T_tr, "
                             "I_te, T_te)")
        list_path = os.path.join(folder, LIST_FILES[split_name])
        labels = _read_labels(list_path, len(class_names))
        image, text = (matrices[key] for key in keys)
        if not len(image) == len(text) == len(labels):
            raise ValueError(
                f"{mat_path!r} has {len(image)} rows in {keys[0]} and {len(text)} in "
                f"{keys[1]}, but {list_path!r} lists {len(labels)} pairs; they must agree"
            )
        try:
            splits[split_name] = CrossModalSplit(image, text, labels, name=split_name)
        except (ValueError, TypeError) as error:
            raise type(error)(f"{mat_path!r} ({keys[0]}, {keys[1]}): {error}") from error
    return CrossModalDataset(
        train=splits["train"], test=splits["test"], class_names=class_names, name=NAME
    )


def _read_categories(path):
    """Class names, one per non-empty line (line k names class k - 1)."""
    with open(path, encoding="utf-8") as handle:
        names = [line.strip() for line in handle if line.strip()]
    if not names:
        raise ValueError(f"{path!r} lists no categories")
    return names


def _read_labels(path, num_classes):
    """Class indices 0..K-1 from a `.list` file of `text_id image_id class` lines (class 1..K)."""
    labels = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3 or not fields[2].isdigit() or not (
                1 <= int(fields[2]) <= num_classes
            ):
                raise ValueError(
                    f"{path!r} line {line_number}: expected 'text_id image_id class' with "
                    f"class in 1..{num_classes} ({CATEGORIES_FILE} names {num_classes} "
                    f"classes), got {line.strip()!r}; the file may be truncated or corrupt"
                )
            labels.append(int(fields[2]) - 1)
    return np.asarray(labels, dtype=np.int64)
