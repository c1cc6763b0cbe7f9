"""Loading raw image + caption pairs from a folder and its annotation file.

The file format is documented in `keras_cmr.datasets.annotations`; the containers returned,
`RawSplit` and `RawDataset`, are in `keras_cmr.datasets.raw_pairs` (and importable from here,
as before).
"""

import os
import warnings

import numpy as np

from keras_cmr.datasets.annotations import annotation_file, check_row, read_records
from keras_cmr.datasets.container import SPLIT_ORDER
from keras_cmr.datasets.raw_pairs import (RawDataset, RawSplit, decode_image, decoding_options,
                                          listing)
from keras_cmr.utils.checks import check_num_classes

BAD_ROW_POLICIES = ("raise", "skip")

__all__ = ["BAD_ROW_POLICIES", "RawDataset", "RawSplit", "load_raw_pairs"]


def load_raw_pairs(annotation_path, image_size=(224, 224), *, num_classes=None,
                   on_bad_rows="raise", verify_images=False, interpolation="bilinear",
                   keep_aspect_ratio=False, allow_unseen_classes=False, name=None):
    """Read a folder of images and its annotation file (format: `keras_cmr.datasets.annotations`).

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
        num_classes = check_num_classes(num_classes)
    decoding = decoding_options(image_size, interpolation, keep_aspect_ratio)
    path = annotation_file(os.fspath(annotation_path))
    folder = os.path.dirname(os.path.abspath(path))
    file_name = os.path.basename(path)
    rows, problems = [], []
    for line_number, fields in read_records(path):
        origin = f"{file_name} line {line_number}"
        if isinstance(fields, str):
            problems.append(f"{origin}: {fields}")
            continue
        row, row_problems = check_row(fields, folder, num_classes, origin)
        if not row_problems and verify_images:
            try:
                decode_image(row.image_path, **decoding)
            except Exception as error:  # PIL raises many types for damaged files
                row_problems.append(f"image {fields['image']!r} could not be read: "
                                    f"{type(error).__name__}: {error}")
        if row_problems:
            problems.append(f"{origin}: {'; '.join(row_problems)}")
        else:
            rows.append(row)
    if problems:
        report = (f"{len(problems)} bad line(s) in {path!r} (image paths are relative to "
                  f"{folder!r}):\n{listing(problems)}")
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
