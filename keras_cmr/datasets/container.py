"""Validated containers for paired image/text features: one split, and a whole data set.

Everything is checked once, on construction, so that models, losses and metrics downstream can
trust shapes, dtypes and label ranges instead of re-checking (or silently mis-training).
"""

import numpy as np

from keras_cmr.datasets.noise import flip_labels
from keras_cmr.datasets.preprocessing import MODALITIES, fit_transform_chain
from keras_cmr.options import check_noise_arguments, check_steps
from keras_cmr.datasets.splits import carve_validation
from keras_cmr.utils.checks import check_labels, check_num_classes, check_real

SPLIT_ORDER = ("train", "val", "test")


def first_unseen_class(dataset):
    """(split name, split, row, class, every unseen class of that split) of the first val /
    test pair having a class that no training pair of `dataset` has (class indices or
    multi-hot); None when every class was seen."""
    train = dataset.train.labels
    seen = train.any(axis=0) if train.ndim == 2 else np.isin(np.arange(dataset.num_classes),
                                                              train)
    for split_name, split in dataset.splits.items():
        labels = split.labels
        unseen = labels.astype(bool) & ~seen[None, :] if labels.ndim == 2 else ~seen[labels]
        if split_name == "train" or not unseen.any():
            continue
        if labels.ndim == 2:
            row, label = (int(i) for i in np.argwhere(unseen)[0])
            return split_name, split, row, label, np.flatnonzero(unseen.any(axis=0)).tolist()
        row = int(np.flatnonzero(unseen)[0])
        return split_name, split, row, int(labels[row]), np.unique(labels[unseen]).tolist()
    return None


def _features(array, array_name):
    """Check one feature matrix and return it as a contiguous float32 array."""
    array = np.asarray(array)
    check_real(array, array_name)
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(
            f"{array_name} must be a 2-D (pairs, features) array with at least one feature, "
            f"got shape {array.shape}"
        )
    with np.errstate(over="ignore"):  # an overflow becomes inf, which the check below reports
        array = np.ascontiguousarray(array, dtype=np.float32)
    finite_rows = np.isfinite(array).all(axis=1)
    if not finite_rows.all():
        row = int(np.flatnonzero(~finite_rows)[0])
        raise ValueError(
            f"{array_name} has a NaN or infinite value at row {row} (after conversion to "
            "float32)"
        )
    return array


class LabelledPairs:
    """What the split containers share: one label (or multi-hot row) per pair in `labels`."""

    @property
    def num_pairs(self):
        return len(self.labels)

    @property
    def is_multilabel(self):
        return self.labels.ndim == 2


class CrossModalSplit(LabelledPairs):
    """One split of paired data: row i of `image` and row i of `text` form one pair.

    Args:
        image: image features `(n, Di)`, stored as float32.
        text: text features `(n, Dt)`, stored as float32.
        labels: 1-D integer class indices `(n,)` or 2-D multi-hot 0/1 labels `(n, C)`; float
            arrays are accepted when integer-valued. Stored as int64.
        name: the split's name, used in error messages (e.g. "image_train").

    Raises:
        TypeError: if an array does not hold numbers.
        ValueError: on a feature array that is not 2-D, a NaN or infinite feature, labels that
            are not integer-valued (or not 0/1 when 2-D), differing pair counts, or no pairs.
    """

    def __init__(self, image, text, labels, name="split"):
        self.name = str(name)
        self.image = _features(image, f"image_{self.name}")
        self.text = _features(text, f"text_{self.name}")
        self.labels = check_labels(labels, f"label_{self.name}")
        counts = (len(self.image), len(self.text), len(self.labels))
        if len(set(counts)) != 1:
            raise ValueError(
                f"split {self.name!r} must have one row per pair in every array, got "
                f"{counts[0]} image rows, {counts[1]} text rows and {counts[2]} labels"
            )
        if counts[0] < 1:
            raise ValueError(f"split {self.name!r} has no pairs")

    @property
    def image_dim(self):
        return self.image.shape[1]

    @property
    def text_dim(self):
        return self.text.shape[1]

    def take(self, indices, name=None):
        """Return a new split holding the pairs at `indices`.

        Args:
            indices: integer row indices.
            name: name of the new split (defaults to this split's name).

        Returns:
            A `CrossModalSplit`.
        """
        indices = np.asarray(indices, dtype=np.int64)
        return CrossModalSplit(
            self.image[indices],
            self.text[indices],
            self.labels[indices],
            name=self.name if name is None else name,
        )

    def __repr__(self):
        return (
            f"CrossModalSplit(name={self.name!r}, num_pairs={self.num_pairs}, "
            f"image_dim={self.image_dim}, text_dim={self.text_dim}, "
            f"multilabel={self.is_multilabel})"
        )


class SplitCollection:
    """What the data set containers share: their `train`, `val` (or None) and `test` splits."""

    @property
    def splits(self):
        """The splits present, as an ordered dict name -> split (train, val, test)."""
        candidates = {"train": self.train, "val": self.val, "test": self.test}
        return {name: candidates[name] for name in SPLIT_ORDER if candidates[name] is not None}

    @property
    def is_multilabel(self):
        return self.train.is_multilabel


class CrossModalDataset(SplitCollection):
    """A cross-modal data set: train and test splits, an optional validation split.

    Args:
        train: the training `CrossModalSplit`.
        test: the test `CrossModalSplit` (never used for model selection).
        num_classes: number of classes. If None: `len(class_names)` when given, else the
            multi-hot width, else the largest class index over all splits plus one.
        val: optional validation `CrossModalSplit`; see `with_validation` to carve one.
        class_names: optional sequence of `num_classes` names (index = class).
        name: the data set's name.
        allow_unseen_classes: accept val / test pairs of a class that no training pair has
            (a zero-shot protocol). False by default: such a class is almost always a broken
            split, and a class-wise model cannot learn a class it never sees.
        label_noise: what `with_label_noise` put on the labels (None: nothing), recorded so
            that results can say it; derived data sets keep it.
        preprocessing: the steps of `preprocessed` (None: none), likewise.

    Raises:
        TypeError: if a split is not a `CrossModalSplit`, `num_classes` is not an integer or
            `class_names` is a single string.
        ValueError: if the image or text dimension differs between splits, single-label and
            multi-hot splits are mixed, a label is outside `[0, num_classes)`, the multi-hot
            width differs from `num_classes`, `class_names` has the wrong length, or (unless
            `allow_unseen_classes`) a val / test pair has a class that no training pair has.
    """

    def __init__(self, train, test, num_classes=None, val=None, class_names=None, name="",
                 allow_unseen_classes=False, label_noise=None, preprocessing=None):
        self.name = str(name)
        self.label_noise, self.preprocessing = label_noise, preprocessing
        self.allow_unseen_classes = bool(allow_unseen_classes)
        self.train, self.val, self.test = train, val, test
        for split_name, split in self.splits.items():
            if not isinstance(split, CrossModalSplit):
                raise TypeError(
                    f"{split_name} must be a CrossModalSplit, got {type(split).__name__}"
                )
        self._check_dims()
        if isinstance(class_names, str):
            raise TypeError("class_names must be a sequence of names, not a single string")
        self.class_names = None if class_names is None else tuple(str(c) for c in class_names)
        self.num_classes = self._resolve_num_classes(num_classes)
        self._check_labels()
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"class_names has {len(self.class_names)} names but there are "
                f"{self.num_classes} classes"
            )
        if not self.allow_unseen_classes:
            self._check_seen_classes()

    @property
    def image_dim(self):
        return self.train.image_dim

    @property
    def text_dim(self):
        return self.train.text_dim

    def _check_dims(self):
        for split_name, split in self.splits.items():
            for modality in ("image", "text"):
                dim = getattr(split, f"{modality}_dim")
                expected = getattr(self.train, f"{modality}_dim")
                if dim != expected:
                    raise ValueError(
                        f"split {split_name!r} has {modality} dim {dim} but train has "
                        f"{expected}; every split must share the feature dimensions"
                    )
            if split.is_multilabel != self.train.is_multilabel:
                kinds = {True: "multi-hot", False: "single-label"}
                raise ValueError(
                    f"split {split_name!r} is {kinds[split.is_multilabel]} but train is "
                    f"{kinds[self.train.is_multilabel]}; all splits must use one label format"
                )

    def _resolve_num_classes(self, num_classes):
        if num_classes is not None:
            return check_num_classes(num_classes)
        if self.class_names is not None:
            return len(self.class_names)
        if self.is_multilabel:
            return self.train.labels.shape[1]
        return int(max(split.labels.max() for split in self.splits.values())) + 1

    def _check_labels(self):
        for split_name, split in self.splits.items():
            labels = split.labels
            if labels.ndim == 2:
                if labels.shape[1] != self.num_classes:
                    raise ValueError(
                        f"split {split_name!r} has multi-hot labels of width "
                        f"{labels.shape[1]} but num_classes is {self.num_classes}"
                    )
                continue
            bad = (labels < 0) | (labels >= self.num_classes)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"split {split_name!r} row {row} has label {labels[row]}, outside "
                    f"[0, {self.num_classes})"
                )

    def _check_seen_classes(self):
        """Every class of val and test must have at least one training pair."""
        unseen = first_unseen_class(self)
        if unseen is not None:
            split_name, _, row, label, classes = unseen
            named = "" if self.class_names is None else f" ({self.class_names[label]!r})"
            raise ValueError(
                f"split {split_name!r} row {row} has class {label}{named}, which no training "
                f"pair has (classes of {split_name!r} missing from train: {classes}); a model "
                "cannot learn a class it never sees in training. Fix the split, or pass "
                "allow_unseen_classes=True for a zero-shot protocol"
            )

    def with_validation(self, fraction=0.1, seed=0):
        """Return a data set whose validation split is a stratified part of train.

        Args:
            fraction: share of each training class moved to validation (see
                `carve_validation`).
            seed: seed of the split.

        Returns:
            `self` if a validation split already exists, else a new `CrossModalDataset`.

        Raises:
            ValueError: as `carve_validation`.
        """
        if self.val is not None:
            return self
        train_indices, val_indices = carve_validation(self.train.labels, fraction, seed)
        return self.with_splits(self.train.take(train_indices, name="train"),
                                self.train.take(val_indices, name="val"))

    def with_splits(self, train, val=None, test=None, **changes):
        """A new data set with these splits (test None: this one's) and the same classes and
        name; `train`, `val` (or None) are `CrossModalSplit`s. `changes`: constructor
        arguments to replace (`allow_unseen_classes`, `label_noise`, `preprocessing`; the
        others are kept)."""
        kept = {"allow_unseen_classes": self.allow_unseen_classes,
                "label_noise": self.label_noise, "preprocessing": self.preprocessing}
        return CrossModalDataset(train=train, val=val, test=self.test if test is None else test,
                                 num_classes=self.num_classes, class_names=self.class_names,
                                 name=self.name, **{**kept, **changes})

    def with_label_noise(self, rate, seed=0, kind="symmetric"):
        """Return a data set whose training labels carry seeded label noise; test stays clean.

        The labelled pool is train followed by val (when carved): exactly
        `round(rate * pool size)` of its pairs get a different class, as defined in
        `keras_cmr.datasets.noise` ("symmetric": uniform over the other classes;
        "asymmetric": class c -> (c + 1) mod C). Order matters: noise then `with_validation`
        carves validation out of the noisy train (stratified by the noisy labels, the labels
        one would have); `with_validation` then noise flips the pooled train and val pairs.
        Either way validation is as noisy as train and the test split is untouched. The
        result's `label_noise` records `{"rate", "kind", "seed", "flipped", "pairs"}`.

        Args:
            rate: fraction of the pool's pairs whose label is changed, in [0, 1].
            seed: integer seed of the noise.
            kind: "symmetric" or "asymmetric".

        Raises:
            ValueError: on multi-hot labels, a rate outside [0, 1], an unknown kind, or a data
                set that already has label noise.
            TypeError: if `seed` is not an integer.
        """
        check_noise_arguments(rate, kind, seed)
        if self.label_noise is not None:
            raise ValueError(f"this data set already has label noise {self.label_noise}; "
                             "apply label noise once, to the clean data set")
        if self.is_multilabel:
            raise ValueError("label noise is defined for single-label data sets only; this "
                             "one has multi-hot labels (no single class to flip)")
        pool = [split for split in (self.train, self.val) if split is not None]
        noisy, flipped = flip_labels(np.concatenate([split.labels for split in pool]),
                                     self.num_classes, rate, seed, kind)
        ends = np.cumsum([split.num_pairs for split in pool])[:-1]
        noisy_splits = [CrossModalSplit(split.image, split.text, labels, name=split.name)
                        for split, labels in zip(pool, np.split(noisy, ends))]
        return self.with_splits(*noisy_splits, label_noise={
            "rate": float(rate), "kind": kind, "seed": int(seed),
            "flipped": int(len(flipped)), "pairs": int(len(noisy))})

    def preprocessed(self, image=(), text=()):
        """Return a data set whose features went through per-modality transforms.

        Each transform is fitted on the training split only and applied to every split; see
        `keras_cmr.datasets.preprocessing` for the steps ("standardize", "l2", "hellinger",
        "pca_whiten"). Carve validation first: fitting before `with_validation` would fit on
        the pairs that become validation. The result's `preprocessing` records the steps.

        Args:
            image: sequence of step names applied in order to the image features.
            text: sequence of step names applied in order to the text features.

        Raises:
            ValueError: on an unknown step or a data set already preprocessed.
            TypeError: if a modality's steps are a single string.
        """
        steps = {"image": check_steps(image, "image"), "text": check_steps(text, "text")}
        if self.preprocessing is not None:
            raise ValueError(f"this data set is already preprocessed ({self.preprocessing}); "
                             "give every step in one call, so that each is fitted on train "
                             "once")
        transforms = {modality: fit_transform_chain(steps[modality], getattr(self.train,
                                                                             modality))
                      for modality in MODALITIES}
        splits = {name: CrossModalSplit(transforms["image"](split.image),
                                        transforms["text"](split.text), split.labels,
                                        name=split.name)
                  for name, split in self.splits.items()}
        return self.with_splits(splits["train"], splits.get("val"), splits["test"],
                                preprocessing={modality: list(steps[modality])
                                               for modality in MODALITIES})

    def summary(self):
        """A short multi-line description: name, dims, pairs per split, classes."""
        label_kind = "multi-hot" if self.is_multilabel else "single-label"
        lines = [
            f"dataset {self.name or '(unnamed)'}: image dim {self.image_dim}, text dim "
            f"{self.text_dim}, {self.num_classes} classes ({label_kind})"
        ]
        for split_name, split in self.splits.items():
            lines.append(f"  {split_name:<5} {split.num_pairs:>8} pairs")
        if self.class_names is not None:
            lines.append(f"  classes: {', '.join(self.class_names)}")
        return "\n".join(lines)

    def __repr__(self):
        counts = ", ".join(f"{k}={v.num_pairs}" for k, v in self.splits.items())
        return (
            f"CrossModalDataset(name={self.name!r}, {counts}, image_dim={self.image_dim}, "
            f"text_dim={self.text_dim}, num_classes={self.num_classes})"
        )
