"""Batches of pairs for `model.fit`, in pure numpy (no tf.data), so every backend can use them."""

import keras
import numpy as np

from keras_cmr.datasets.order import EpochOrder
from keras_cmr.datasets.splits import stratum_labels
from keras_cmr.utils.checks import check_positive_int, check_seed


def _feature_matrix(array, what):
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (pairs, features) array, got shape {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float32)


def check_batch_size(batch_size, num_pairs, drop_remainder):
    """`batch_size` as an int, checked for in-batch losses over `num_pairs` pairs.

    Raises:
        ValueError: for a `batch_size` that is not a positive integer, of 1, above
            `num_pairs` with `drop_remainder`, or leaving a last batch of a single pair: the
            in-batch losses compare each pair with the others of its batch.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    if drop_remainder and batch_size > num_pairs:
        raise ValueError(
            f"batch_size={batch_size} exceeds the {num_pairs} pairs, so drop_remainder=True "
            "would leave no batch; lower batch_size or set drop_remainder=False"
        )
    if batch_size == 1:
        raise ValueError(
            "batch_size=1: the in-batch losses compare each pair with the others of its "
            "batch, so a batch needs at least 2 pairs"
        )
    if not drop_remainder and num_pairs % batch_size == 1:
        raise ValueError(
            f"{num_pairs} pairs in batches of {batch_size} leave a last batch of a single "
            "pair, which the in-batch losses cannot learn from; set drop_remainder=True or "
            "change batch_size"
        )
    return batch_size


class PairBatches(keras.utils.PyDataset):
    """A `keras.utils.PyDataset` of paired batches `({"image": x, "text": y}, labels)`.

    Two modes:

    - Plain (default): the pairs in order, or shuffled when `shuffle=True`, in batches of
      `batch_size`. With `drop_remainder=True` every batch has the same shape, so compiled
      train steps are never retraced; with `drop_remainder=False` the last batch is smaller.
    - Class-balanced (`classes_per_batch=P` and `pairs_per_class=K`): each batch holds P
      distinct classes drawn uniformly, K pairs of each (grouped by class). A class's pairs are
      drawn without repetition until it runs out, then reshuffled; only a class with fewer than
      K pairs is sampled with replacement. Multi-hot labels are grouped by their first positive
      class. An epoch has `max(1, num_pairs // (P * K))` batches; `batch_size`, `shuffle` and
      `drop_remainder` are not used.

    The order of epoch e is drawn from `np.random.default_rng([seed, e])`, so it is the same on
    every backend and every run, differs between epochs, and does not depend on how many
    batches were read. `on_epoch_end` moves to the next epoch; note that `fit` calls it once
    more when it resets its iterator before the first epoch, so `fit` starts at epoch 1 (the
    same on every backend and every run).

    Args:
        image: image features `(n, Di)`, served as float32.
        text: text features `(n, Dt)`, served as float32.
        labels: labels `(n,)` or `(n, C)`, served as given.
        batch_size: pairs per batch in plain mode.
        shuffle: shuffle the pairs each epoch (plain mode).
        seed: non-negative integer seed; None draws one at random (once, on construction).
        drop_remainder: drop the last incomplete batch (plain mode).
        classes_per_batch: P, classes per batch (class-balanced mode; give K too).
        pairs_per_class: K, pairs per class in a batch (class-balanced mode; give P too).
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` of `PyDataset`.

    Raises:
        ValueError: on differing pair counts, no pairs, a feature array that is not 2-D, a
            `batch_size` below 2 or (with `drop_remainder`) above the number of pairs, a last
            batch of a single pair (without `drop_remainder`), P * K below 2, only one of P
            and K given, or P above the number of classes present. The in-batch losses compare
            each pair with the others of its batch, so every batch needs at least 2 pairs.
    """

    def __init__(
        self,
        image,
        text,
        labels,
        batch_size=100,
        shuffle=True,
        seed=0,
        drop_remainder=True,
        classes_per_batch=None,
        pairs_per_class=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image = _feature_matrix(image, "image")
        self.text = _feature_matrix(text, "text")
        self.labels = np.asarray(labels)
        counts = (len(self.image), len(self.text), len(self.labels))
        if len(set(counts)) != 1:
            raise ValueError(
                f"image, text and labels must have one row per pair, got {counts[0]} image "
                f"rows, {counts[1]} text rows and {counts[2]} labels"
            )
        self.num_pairs = counts[0]
        if self.num_pairs < 1:
            raise ValueError("PairBatches needs at least one pair")
        self.seed = int(np.random.SeedSequence().entropy) if seed is None else check_seed(seed)
        self.shuffle = bool(shuffle)
        self.drop_remainder = bool(drop_remainder)
        self.epoch = 0
        self._cached_plan = (None, None)  # class-balanced mode: (epoch, list of index arrays)

        if (classes_per_batch is None) != (pairs_per_class is None):
            raise ValueError(
                "class-balanced batches need both classes_per_batch (P) and pairs_per_class "
                f"(K), got P={classes_per_batch!r}, K={pairs_per_class!r}"
            )
        self.balanced = classes_per_batch is not None
        if self.balanced:
            self.classes_per_batch = check_positive_int(classes_per_batch, "classes_per_batch")
            self.pairs_per_class = check_positive_int(pairs_per_class, "pairs_per_class")
            groups = stratum_labels(self.labels)
            self._class_members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
            if self.classes_per_batch > len(self._class_members):
                raise ValueError(
                    f"classes_per_batch={self.classes_per_batch} but only "
                    f"{len(self._class_members)} classes are present"
                )
            self.batch_size = self.classes_per_batch * self.pairs_per_class
            if self.batch_size < 2:
                raise ValueError(
                    "classes_per_batch * pairs_per_class = 1 pair per batch; the in-batch "
                    "losses compare each pair with the others of its batch, so a batch needs "
                    "at least 2 pairs"
                )
        else:
            self.batch_size = check_batch_size(batch_size, self.num_pairs, self.drop_remainder)
            self.order = EpochOrder(self.num_pairs, self.batch_size, self.seed, self.shuffle,
                                    self.drop_remainder)

    @classmethod
    def from_split(cls, split, **kwargs):
        """Batches of a `CrossModalSplit`; `kwargs` are those of the constructor."""
        return cls(split.image, split.text, split.labels, **kwargs)

    def __len__(self):
        if self.balanced:
            return max(1, self.num_pairs // self.batch_size)
        return len(self.order)

    def __getitem__(self, index):
        if not self.balanced:
            rows = self.order.rows(self.epoch, index)
        else:
            plan = self._balanced_plan()
            if not -len(plan) <= index < len(plan):
                raise IndexError(f"batch {index} out of range for {len(plan)} batches")
            rows = plan[index]
        return {"image": self.image[rows], "text": self.text[rows]}, self.labels[rows]

    def on_epoch_end(self):
        self.epoch += 1

    def _balanced_plan(self):
        """The class-balanced batches of the current epoch (drawn once per epoch)."""
        epoch, plan = self._cached_plan
        if epoch != self.epoch:
            plan = self._draw_balanced(np.random.default_rng([self.seed, self.epoch]))
            self._cached_plan = (self.epoch, plan)
        return plan

    def _draw_balanced(self, rng):
        k = self.pairs_per_class
        queues = [rng.permutation(members) for members in self._class_members]
        positions = [0] * len(queues)
        plan = []
        for _ in range(len(self)):
            rows = []
            for c in rng.choice(len(queues), self.classes_per_batch, replace=False):
                members = self._class_members[c]
                if len(members) < k:
                    # Too few pairs: use each once, then fill up with repeats.
                    extra = rng.choice(members, k - len(members), replace=True)
                    rows.append(rng.permutation(np.concatenate([members, extra])))
                    continue
                if positions[c] + k > len(members):
                    # Class used up this cycle: reshuffle so no pair repeats within a batch.
                    queues[c], positions[c] = rng.permutation(members), 0
                rows.append(queues[c][positions[c]:positions[c] + k])
                positions[c] += k
            plan.append(np.concatenate(rows))
        return plan


class RowBatches(keras.utils.PyDataset):
    """Batches `(inputs[rows], labels[rows])` of named arrays, the rows from an `EpochOrder`.

    `epoch` is the epoch whose order is served; `on_epoch_end` moves to the next (`fit` calls
    it once before the first epoch, so `fit` starts at epoch 1, as `PairBatches`), and
    `keras_cmr.callbacks.ReproducibleEpochs` may set it.

    Args:
        inputs: dict of arrays with one row per pair (all of them, in every process).
        labels: array of the pairs' labels.
        order: the `EpochOrder` over these rows.
    """

    def __init__(self, inputs, labels, order):
        super().__init__()
        if order.num_pairs != len(labels):
            raise ValueError(f"the order is over {order.num_pairs} rows but there are "
                             f"{len(labels)} labels")
        self.inputs, self.labels, self.order = inputs, labels, order
        self.epoch = 0

    def __len__(self):
        return len(self.order)

    def __getitem__(self, index):
        rows = self.order.rows(self.epoch, index)
        return {key: value[rows] for key, value in self.inputs.items()}, self.labels[rows]

    def on_epoch_end(self):
        self.epoch += 1
