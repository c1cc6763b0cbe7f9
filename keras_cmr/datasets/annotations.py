"""The annotation file of raw image + caption pairs: its format, and a parser of its lines.

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
import os
from typing import NamedTuple

from keras_cmr.datasets.container import SPLIT_ORDER

ANNOTATION_EXTENSIONS = (".jsonl", ".tsv")
TSV_COLUMNS = ("image", "caption", "label", "split")


class AnnotationRow(NamedTuple):
    """One good annotation line."""

    image_path: str
    caption: str
    labels: tuple
    is_multi: bool
    split: str
    origin: str


def annotation_file(path):
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


def read_records(path):
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
        yield line_number, tsv_record(line) if is_tsv else jsonl_record(line)


def jsonl_record(line):
    """The raw fields of one `.jsonl` line, or a str saying what is wrong with it."""
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


def tsv_record(line):
    """The raw fields of one `.tsv` data line, or a str saying what is wrong with it."""
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


def check_row(fields, folder, num_classes, origin):
    """(`AnnotationRow`, [problems]) for one record; the row is meaningful only without problems."""
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
    row = AnnotationRow(full_path, caption, tuple(labels), fields["is_multi"], split, origin)
    return row, problems
