"""Containers of raw image + caption pairs: a split decoding its images on demand, a data set.

The annotation-file format they are read from is in `keras_cmr.datasets.annotations`, the
loader in `keras_cmr.datasets.raw`.
"""

import numbers
import os

import keras
import numpy as np

from keras_cmr.datasets.container import LabelledPairs, SplitCollection, first_unseen_class
from keras_cmr.utils.checks import check_labels, check_num_classes

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")
MAX_LISTED = 20


def listing(problems):
    """Indented lines, at most MAX_LISTED of them, then how many more were left out."""
    lines = [f"  {problem}" for problem in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        lines.append(f"  ... and {len(problems) - MAX_LISTED} more")
    return "\n".join(lines)


def decode_image(path, image_size, interpolation, keep_aspect_ratio):
    """One image file as a uint8 (H, W, 3) array, resized by Keras' own image utilities."""
    image = keras.utils.load_img(
        path, color_mode="rgb", target_size=image_size, interpolation=interpolation,
        keep_aspect_ratio=keep_aspect_ratio,
    )
    return keras.utils.img_to_array(image, data_format="channels_last", dtype="uint8")


class RawSplit(LabelledPairs):
    """One split of raw pairs: image files (decoded on demand), captions and labels.

    Args:
        image_paths: the image file of each pair.
        captions: the caption of each pair (non-blank strings).
        labels: 1-D class indices `(n,)` or 2-D multi-hot 0/1 labels `(n, C)`; stored as int64.
        name: the split's name, used in error messages.
        image_size: `(height, width)` every image is resized to when decoded.
        interpolation: resampling method of `keras.utils.load_img`.
        keep_aspect_ratio: crop each image to the aspect ratio of `image_size` (centred) before
            resizing, instead of stretching it.
        origins: optional text naming where each pair came from (e.g. "captions.jsonl line 7"),
            used in error messages instead of "split 'train' row 6".

    Raises:
        TypeError: if a path or caption is not a string, or `image_size` is not two integers.
        ValueError: on a blank caption, labels that are not integer-valued (or not 0/1 when
            2-D), differing counts, no pairs, a size below 1 or an unknown interpolation.
    """

    def __init__(self, image_paths, captions, labels, name="split", image_size=(224, 224),
                 interpolation="bilinear", keep_aspect_ratio=False, origins=None):
        self.name = str(name)
        self.image_paths = [os.fspath(path) if isinstance(path, os.PathLike) else path
                            for path in image_paths]
        self.captions = list(captions)
        self.labels = check_labels(labels, f"label_{self.name}")
        self.origins = None if origins is None else [str(origin) for origin in origins]
        counts = {"image paths": len(self.image_paths), "captions": len(self.captions),
                  "labels": len(self.labels)}
        if self.origins is not None:
            counts["origins"] = len(self.origins)
        if len(set(counts.values())) != 1:
            found = ", ".join(f"{count} {what}" for what, count in counts.items())
            raise ValueError(f"split {self.name!r} must have one entry per pair, got {found}")
        if not self.labels.size:
            raise ValueError(f"split {self.name!r} has no pairs")
        for row, (path, caption) in enumerate(zip(self.image_paths, self.captions)):
            if not isinstance(path, str):
                raise TypeError(f"{self.where(row)}: the image path must be a string, got "
                                f"{type(path).__name__}")
            if not isinstance(caption, str):
                raise TypeError(f"{self.where(row)}: the caption must be a string, got "
                                f"{type(caption).__name__}")
            if not caption.strip():
                raise ValueError(f"{self.where(row)}: the caption is empty")
        self.decoding = decoding_options(image_size, interpolation, keep_aspect_ratio)

    @property
    def image_size(self):
        """`(height, width)` of the decoded images."""
        return self.decoding["image_size"]

    def where(self, row):
        """Where pair `row` came from, for messages."""
        if self.origins is not None:
            return self.origins[row]
        return f"split {self.name!r} row {row}"

    def read_images(self, start=0, stop=None):
        """Decode the images of pairs `start` to `stop` (slice semantics; all by default).

        Returns:
            A uint8 array `(stop - start, height, width, 3)`.

        Raises:
            ValueError: if an image file is missing or cannot be decoded; lists every such pair
                of the range with its origin (the annotation line) and the decoder's error.
        """
        rows = range(self.num_pairs)[start:stop]
        images = np.zeros((len(rows), *self.image_size, 3), dtype=np.uint8)
        problems = []
        for position, row in enumerate(rows):
            try:
                images[position] = decode_image(self.image_paths[row], **self.decoding)
            except Exception as error:  # PIL raises many types for damaged files
                problems.append(f"{self.where(row)}: image {self.image_paths[row]!r} could "
                                f"not be read: {type(error).__name__}: {error}")
        if problems:
            raise ValueError(f"{len(problems)} image(s) of split {self.name!r} could not be "
                             f"decoded:\n{listing(problems)}")
        return images

    def iter_batches(self, batch_size):
        """Yield `(images, captions, labels)` for consecutive batches of pairs, in order.

        Only one batch of images is decoded at a time. `images` is uint8
        `(b, height, width, 3)`, `captions` a list of `b` strings, `labels` the `b` matching
        rows of `labels`; the last batch may be smaller.

        Raises:
            ValueError: if `batch_size` is not a positive integer; as `read_images`.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or (
            batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        for start in range(0, self.num_pairs, batch_size):
            stop = start + batch_size
            yield self.read_images(start, stop), self.captions[start:stop], self.labels[start:stop]

    def __repr__(self):
        return (f"RawSplit(name={self.name!r}, num_pairs={self.num_pairs}, "
                f"image_size={self.image_size}, multilabel={self.is_multilabel})")


def decoding_options(image_size, interpolation, keep_aspect_ratio):
    """The checked arguments of `decode_image` besides the path."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got "
                         f"{interpolation!r}")
    return {"image_size": _image_size(image_size), "interpolation": interpolation,
            "keep_aspect_ratio": bool(keep_aspect_ratio)}


def _image_size(image_size):
    try:
        height, width = image_size
    except (TypeError, ValueError):
        raise TypeError(f"image_size must be (height, width), got {image_size!r}") from None
    for value in (height, width):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"image_size must be two integers, got {image_size!r}")
        if value < 1:
            raise ValueError(f"image_size must be positive, got {image_size!r}")
    return int(height), int(width)


class RawDataset(SplitCollection):
    """Raw train, optional val, and test splits with one label space.

    Args:
        train, test: `RawSplit`s; val: an optional `RawSplit`.
        num_classes: number of classes; if None, the multi-hot width, else the largest class
            index over all splits plus one.
        name: the data set's name.
        allow_unseen_classes: accept val / test pairs of a class no training pair has (as
            `CrossModalDataset`).

    Raises:
        TypeError: if a split is not a `RawSplit` or `num_classes` not an integer.
        ValueError: if single-label and multi-hot splits are mixed, a label is outside
            `[0, num_classes)`, the multi-hot width differs from `num_classes`, or (unless
            `allow_unseen_classes`) a val / test pair has a class that no training pair has.
    """

    def __init__(self, train, test, num_classes=None, val=None, name="",
                 allow_unseen_classes=False):
        self.name = str(name)
        self.allow_unseen_classes = bool(allow_unseen_classes)
        self.train, self.val, self.test = train, val, test
        for split_name, split in {"train": train, "test": test, "val": val}.items():
            if split_name == "val" and split is None:
                continue
            if not isinstance(split, RawSplit):
                raise TypeError(f"{split_name} must be a RawSplit, got {type(split).__name__}")
            if split.is_multilabel != train.is_multilabel:
                raise ValueError(f"split {split_name!r} and split 'train' must both be "
                                 "single-label or both multi-hot")
        if num_classes is None:
            num_classes = (train.labels.shape[1] if train.is_multilabel else
                           max(int(split.labels.max()) for split in self.splits.values()) + 1)
        self.num_classes = check_num_classes(num_classes)
        for split_name, split in self.splits.items():
            self._check_labels(split_name, split)
        if not self.allow_unseen_classes:
            self._check_seen_classes()

    def _check_labels(self, split_name, split):
        labels = split.labels
        if labels.ndim == 2:
            if labels.shape[1] != self.num_classes:
                raise ValueError(f"split {split_name!r} has multi-hot labels of width "
                                 f"{labels.shape[1]} but num_classes is {self.num_classes}")
            return
        bad = (labels < 0) | (labels >= self.num_classes)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{split.where(row)}: split {split_name!r} has label "
                             f"{labels[row]}, outside [0, {self.num_classes})")

    def _check_seen_classes(self):
        """Every class of val and test must have at least one training pair."""
        unseen = first_unseen_class(self)
        if unseen is not None:
            split_name, split, row, label, classes = unseen
            raise ValueError(
                f"{split.where(row)}: split {split_name!r} has class {label}, which no "
                f"training pair has (classes of {split_name!r} missing from train: "
                f"{classes}); a model cannot learn a class it never sees in training. Fix the "
                "split, or pass allow_unseen_classes=True for a zero-shot protocol"
            )

    def __repr__(self):
        counts = ", ".join(f"{k}={v.num_pairs}" for k, v in self.splits.items())
        return f"RawDataset(name={self.name!r}, {counts}, num_classes={self.num_classes})"
