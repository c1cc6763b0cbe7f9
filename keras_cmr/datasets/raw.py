"""Raw image + caption pairs: the annotation-file format, its loader, and on-demand decoding.

A data set is a folder holding the images (in any sub-folders) and ONE annotation file, UTF-8
(a leading byte-order mark is allowed), one pair per line. Line numbers count every line from
1, header and blank lines included; lines holding only whitespace are ignored.

`.jsonl` (JSON lines): one JSON object per line, with the keys
    image    path of the image file, relative to the annotation file's folder (an absolute
             path is used as is); "/" separates folders.
    caption  the text: a string with at least one non-whitespace character, kept as written.
    label    a class index: a JSON integer >= 0, or
    labels   a non-empty list of class indices (multi-label); exactly one of the two keys.
    split    "train", "val" or "test" (lower case).
  Other keys (an id, a source URL...) are ignored. Example:
    {"image": "img/cat_01.jpg", "caption": "A cat asleep on a sofa.", "label": 3, "split": "train"}

`.tsv` (tab-separated): line 1 is the header `image<TAB>caption<TAB>label<TAB>split` (these four
names in this order), then four fields per line, split on tabs without any quoting (a caption
cannot hold a tab or a newline; write `.jsonl` for such captions). The label field holds one
class index, or several joined by commas ("2,5") for multi-label data; spaces around the
indices are ignored.

Rules:
- Every line names its split; train and test must each have at least one pair, val is
  optional (carve one later with `CrossModalDataset.with_validation`).
- Labels are class indices 0..C-1. C is `num_classes` when given (a larger index is a bad row),
  else the largest index in the file plus one.
- The file is multi-label when any line uses `labels` (`.jsonl`) or a comma (`.tsv`); its labels
  are then multi-hot `(n, C)`, a single index counting as a one-label set. Otherwise they are
  class indices `(n,)`.
- Unless `allow_unseen_classes`, every class of a val or test pair must have a training pair.
- An image may appear on several lines (several captions of one image). Image files are
  decoded with Keras (`keras.utils.load_img`, any format PIL reads) and converted to RGB.

Bad lines (malformed JSON, a wrong column count, a missing image file, an empty caption, a
missing or invalid label, an unknown split, and with `verify_images` an image that cannot be
decoded) are all collected and reported together, each with its line number.
"""

import json
import numbers
import os
import warnings
from typing import NamedTuple

import keras
import numpy as np

from keras_cmr.datasets.container import SPLIT_ORDER, _labels

ANNOTATION_EXTENSIONS = (".jsonl", ".tsv")
TSV_COLUMNS = ("image", "caption", "label", "split")
BAD_ROW_POLICIES = ("raise", "skip")
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")
MAX_LISTED = 20


class _Row(NamedTuple):
    """One good annotation line."""

    image_path: str
    caption: str
    labels: tuple
    is_multi: bool
    split: str
    origin: str


def _listing(problems):
    """Indented lines, at most MAX_LISTED of them, then how many more were left out."""
    lines = [f"  {problem}" for problem in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        lines.append(f"  ... and {len(problems) - MAX_LISTED} more")
    return "\n".join(lines)


def _decode(path, image_size, interpolation, keep_aspect_ratio):
    """One image file as a uint8 (H, W, 3) array, resized by Keras' own image utilities."""
    image = keras.utils.load_img(
        path, color_mode="rgb", target_size=image_size, interpolation=interpolation,
        keep_aspect_ratio=keep_aspect_ratio,
    )
    return keras.utils.img_to_array(image, data_format="channels_last", dtype="uint8")


class RawSplit:
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
        self.labels = _labels(labels, f"label_{self.name}")
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
        self.decoding = _decoding(image_size, interpolation, keep_aspect_ratio)

    @property
    def image_size(self):
        """`(height, width)` of the decoded images."""
        return self.decoding["image_size"]

    @property
    def num_pairs(self):
        return len(self.labels)

    @property
    def is_multilabel(self):
        return self.labels.ndim == 2

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
                images[position] = _decode(self.image_paths[row], **self.decoding)
            except Exception as error:  # PIL raises many types for damaged files
                problems.append(f"{self.where(row)}: image {self.image_paths[row]!r} could "
                                f"not be read: {type(error).__name__}: {error}")
        if problems:
            raise ValueError(f"{len(problems)} image(s) of split {self.name!r} could not be "
                             f"decoded:\n{_listing(problems)}")
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


def _num_classes(num_classes):
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise TypeError(f"num_classes must be an integer, got {num_classes!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return int(num_classes)


def _decoding(image_size, interpolation, keep_aspect_ratio):
    """The checked arguments of `_decode` besides the path."""
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


class RawDataset:
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
        self.num_classes = _num_classes(num_classes)
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
        train = self.train.labels
        seen = train.any(axis=0) if train.ndim == 2 else np.isin(
            np.arange(self.num_classes), train)
        for split_name, split in self.splits.items():
            labels = split.labels
            unseen = labels.astype(bool) & ~seen if labels.ndim == 2 else ~seen[labels]
            if split_name == "train" or not unseen.any():
                continue
            if labels.ndim == 2:
                row, label = (int(i) for i in np.argwhere(unseen)[0])
                classes = np.flatnonzero(unseen.any(axis=0)).tolist()
            else:
                row = int(np.flatnonzero(unseen)[0])
                label = int(labels[row])
                classes = np.unique(labels[unseen]).tolist()
            raise ValueError(
                f"{split.where(row)}: split {split_name!r} has class {label}, which no "
                f"training pair has (classes of {split_name!r} missing from train: "
                f"{classes}); a model cannot learn a class it never sees in training. Fix the "
                "split, or pass allow_unseen_classes=True for a zero-shot protocol"
            )

    @property
    def splits(self):
        """The splits present, as an ordered dict name -> `RawSplit` (train, val, test)."""
        candidates = {"train": self.train, "val": self.val, "test": self.test}
        return {name: candidates[name] for name in SPLIT_ORDER if candidates[name] is not None}

    @property
    def is_multilabel(self):
        return self.train.is_multilabel

    def __repr__(self):
        counts = ", ".join(f"{k}={v.num_pairs}" for k, v in self.splits.items())
        return f"RawDataset(name={self.name!r}, {counts}, num_classes={self.num_classes})"


def load_raw_pairs(annotation_path, image_size=(224, 224), *, num_classes=None,
                   on_bad_rows="raise", verify_images=False, interpolation="bilinear",
                   keep_aspect_ratio=False, allow_unseen_classes=False, name=None):
    """Read a folder of images and its annotation file (format in this module's docstring).

    Images are not decoded here (unless `verify_images`): each split holds the file paths and
    decodes them on demand, `split.read_images(start, stop)` or `split.iter_batches(n)`, so a
    data set of any size can be processed batch by batch.

    Args:
        annotation_path: the `.jsonl` or `.tsv` annotation file, or the folder holding exactly
            one such file.
        image_size: `(height, width)` images are resized to when decoded.
        num_classes: number of classes (default: largest class index in the file plus one).
        on_bad_rows: "raise" (default) refuses the file when any line is bad, listing them
            all; "skip" drops the bad lines and warns, listing them.
        verify_images: decode every image now, so that unreadable ones are reported (or
            skipped) with the other bad lines instead of failing later, in `read_images`.
        interpolation, keep_aspect_ratio: how images are resized (see `RawSplit`).
        allow_unseen_classes: see `CrossModalDataset`.
        name: the data set's name (default: the name of the annotation file's folder).

    Returns:
        A `RawDataset` of `RawSplit`s whose `origins` name each pair's annotation line.

    Raises:
        FileNotFoundError: if `annotation_path` does not exist.
        ValueError: on an unsupported extension, a folder without exactly one annotation file,
            a wrong `.tsv` header, bad lines (with "raise"), a train or test split without
            pairs, or a val / test class absent from train.
    """
    if on_bad_rows not in BAD_ROW_POLICIES:
        raise ValueError(f"on_bad_rows must be one of {BAD_ROW_POLICIES}, got {on_bad_rows!r}")
    if num_classes is not None:
        num_classes = _num_classes(num_classes)
    decoding = _decoding(image_size, interpolation, keep_aspect_ratio)
    path = _annotation_file(os.fspath(annotation_path))
    folder = os.path.dirname(os.path.abspath(path))
    file_name = os.path.basename(path)
    rows, problems = [], []
    for line_number, fields in _records(path):
        origin = f"{file_name} line {line_number}"
        if isinstance(fields, str):
            problems.append(f"{origin}: {fields}")
            continue
        row, row_problems = _check_row(fields, folder, num_classes, origin)
        if not row_problems and verify_images:
            try:
                _decode(row.image_path, **decoding)
            except Exception as error:  # PIL raises many types for damaged files
                row_problems.append(f"image {fields['image']!r} could not be read: "
                                    f"{type(error).__name__}: {error}")
        if row_problems:
            problems.append(f"{origin}: {'; '.join(row_problems)}")
        else:
            rows.append(row)
    if problems:
        report = (f"{len(problems)} bad line(s) in {path!r} (image paths are relative to "
                  f"{folder!r}):\n{_listing(problems)}")
        if on_bad_rows == "raise":
            raise ValueError(report)
        warnings.warn(f"skipped {report}", stacklevel=2)

    multilabel = any(row.is_multi for row in rows)
    if num_classes is None and rows:
        num_classes = max(max(row.labels) for row in rows) + 1
    splits = {}
    for split_name in SPLIT_ORDER:
        chosen = [row for row in rows if row.split == split_name]
        if not chosen:
            if split_name == "val":
                continue
            skipped = f" after skipping {len(problems)} bad line(s)" if problems else ""
            raise ValueError(f"{path!r} has no {split_name!r} pairs{skipped}; train and test "
                             "are required, val is optional")
        if multilabel:
            labels = np.zeros((len(chosen), num_classes), dtype=np.int64)
            for position, row in enumerate(chosen):
                labels[position, list(row.labels)] = 1
        else:
            labels = [row.labels[0] for row in chosen]
        splits[split_name] = RawSplit(
            [row.image_path for row in chosen], [row.caption for row in chosen], labels,
            name=split_name, origins=[row.origin for row in chosen], **decoding,
        )
    return RawDataset(
        splits["train"], splits["test"], num_classes=num_classes, val=splits.get("val"),
        name=os.path.basename(folder) if name is None else name,
        allow_unseen_classes=allow_unseen_classes,
    )


def _annotation_file(path):
    """The annotation file `path` names, directly or as the only one in a folder."""
    if os.path.isdir(path):
        found = sorted(entry for entry in os.listdir(path)
                       if entry.endswith(ANNOTATION_EXTENSIONS))
        if len(found) != 1:
            raise ValueError(f"the folder {path!r} must hold exactly one annotation file "
                             f"({' or '.join(ANNOTATION_EXTENSIONS)}), found {found}")
        return os.path.join(path, found[0])
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no annotation file or folder at {path!r}")
    if os.path.splitext(path)[1] not in ANNOTATION_EXTENSIONS:
        raise ValueError(f"{path!r} is not an annotation file: the extension must be one of "
                         f"{ANNOTATION_EXTENSIONS}")
    return path


def _records(path):
    """Yield (line number, dict of the raw fields, or a str saying what is wrong with the line)."""
    with open(path, "rb") as handle:
        lines = handle.read().split(b"\n")
    is_tsv = path.endswith(".tsv")
    for line_number, raw in enumerate(lines, start=1):
        try:
            line = raw.decode("utf-8-sig" if line_number == 1 else "utf-8").rstrip("\r")
        except UnicodeDecodeError as error:
            yield line_number, f"not valid UTF-8 ({error.reason} at byte {error.start})"
            continue
        if is_tsv and line_number == 1:
            if tuple(field.strip() for field in line.split("\t")) != TSV_COLUMNS:
                raise ValueError(f"{path!r} line 1: the header must be "
                                 f"{chr(9).join(TSV_COLUMNS)!r}, got {line!r}")
            continue
        if not line.strip():
            continue
        yield line_number, _tsv_record(line) if is_tsv else _jsonl_record(line)


def _jsonl_record(line):
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        return f"not valid JSON ({error.msg} at column {error.colno})"
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    if "label" in record and "labels" in record:
        return "has both 'label' and 'labels'; give one"
    missing = [key for key in ("image", "caption", "split") if key not in record]
    if "label" not in record and "labels" not in record:
        missing.append("label (or labels)")
    if missing:
        return f"missing key(s) {', '.join(missing)}"
    is_multi = "labels" in record
    labels = record["labels"] if is_multi else [record["label"]]
    if not isinstance(labels, list):
        return f"'labels' must be a list of class indices, got {labels!r}"
    return {"image": record["image"], "caption": record["caption"], "labels": labels,
            "is_multi": is_multi, "split": record["split"]}


def _tsv_record(line):
    fields = line.split("\t")
    if len(fields) != len(TSV_COLUMNS):
        return (f"expected {len(TSV_COLUMNS)} tab-separated fields ({', '.join(TSV_COLUMNS)}), "
                f"got {len(fields)}")
    image, caption, label, split = fields
    labels = []
    for part in label.split(","):
        part = part.strip()
        # Class indices as ints when they are plain digits; the row check reports the rest.
        labels.append(int(part) if part.isascii() and part.isdigit() else part)
    return {"image": image.strip(), "caption": caption, "labels": labels,
            "is_multi": "," in label, "split": split.strip()}


def _check_row(fields, folder, num_classes, origin):
    """(`_Row`, [problems]) for one record; the row is meaningful only without problems."""
    problems = []
    image, caption, labels, split = (fields[key] for key in ("image", "caption", "labels",
                                                               "split"))
    full_path = None
    if not isinstance(image, str) or not image.strip():
        problems.append(f"image must be a non-empty path, got {image!r}")
    else:
        full_path = os.path.join(folder, image)
        if not os.path.isfile(full_path):
            problems.append(f"image {image!r} not found")
    if not isinstance(caption, str):
        problems.append(f"caption must be a string, got {caption!r}")
    elif not caption.strip():
        problems.append("caption is empty")
    if not labels:
        problems.append("labels is empty; a pair needs at least one class")
    for label in labels:
        if isinstance(label, bool) or not isinstance(label, int) or label < 0:
            problems.append(f"label {label!r} is not a class index (an integer >= 0)")
        elif num_classes is not None and label >= num_classes:
            problems.append(f"label {label} is outside [0, {num_classes}) (num_classes)")
    if split not in SPLIT_ORDER:
        problems.append(f"split {split!r} is not one of {', '.join(SPLIT_ORDER)}")
    return _Row(full_path, caption, tuple(labels), fields["is_multi"], split, origin), problems
