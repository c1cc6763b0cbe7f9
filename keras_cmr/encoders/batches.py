"""`RawPairBatches`: raw images and captions, preprocessed per batch outside the train step."""

import numbers

import keras
import numpy as np

from keras_cmr.datasets.order import EpochOrder
from keras_cmr.utils.checks import check_seed


class RawPairBatches(keras.utils.PyDataset):
    """A `keras.utils.PyDataset` of `({"image": images, "text": token_ids}, labels)` batches.

    Raw strings cannot enter a compiled JAX or PyTorch train step, so the towers' `preprocess`
    runs here, in the input pipeline, as keras-hub tasks apply their preprocessor: the
    captions are tokenised once, on construction (bad captions fail at once), and each batch's
    images are converted (resized, rescaled, normalised) when the batch is read, so only the
    raw uint8 images stay in memory. `model.fit(RawPairBatches(...))` then trains a
    `SourceModel` or `TransferModel` whose encoder holds these towers, on every backend.

    The order of epoch e is the `keras_cmr.datasets.EpochOrder` of the seed (as `PairBatches`):
    the same on every backend and run.

    Example:

    ```python
    encoder = CrossModalEncoder(*clip_towers("./clip_preset", embedding_dim=256))
    batches = RawPairBatches(images, captions, labels, encoder.image_tower,
                             encoder.text_tower, batch_size=64)
    model = SourceModel(encoder, num_classes)
    model.compile(optimizer="adam")
    model.fit(batches, epochs=10)
    ```

    Args:
        images: raw images `(n, H, W, 3)`, uint8 (any size the image converter accepts).
        captions: `n` strings.
        labels: labels `(n,)` or `(n, C)`, served as given.
        image_tower: the `ImageTower` (or anything with `preprocess(images)`).
        text_tower: the `TextTower` (or anything with `preprocess(captions)`).
        batch_size: pairs per batch (at least 2: the in-batch losses compare pairs).
        shuffle: shuffle the pairs each epoch.
        seed: non-negative integer seed of the shuffling.
        drop_remainder: drop the last incomplete batch (same shapes every step).
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` of `PyDataset`.

    Raises:
        ValueError: differing counts, no pairs, a batch size below 2 or above the number of
            pairs (with `drop_remainder`), a last batch of a single pair, or what the towers'
            `preprocess` raises on the captions.
    """

    def __init__(self, images, captions, labels, image_tower, text_tower, batch_size=32,
                 shuffle=True, seed=0, drop_remainder=True, **kwargs):
        super().__init__(**kwargs)
        self.images = np.asarray(images)
        self.labels = np.asarray(labels)
        self.image_tower = image_tower
        self.token_ids = text_tower.preprocess(captions)
        counts = (len(self.images), len(self.token_ids), len(self.labels))
        if len(set(counts)) != 1:
            raise ValueError(f"images, captions and labels must have one entry per pair, got "
                             f"{counts[0]} images, {counts[1]} captions and {counts[2]} labels")
        self.num_pairs = counts[0]
        if self.num_pairs < 1:
            raise ValueError("RawPairBatches needs at least one pair")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or \
                batch_size < 2:
            raise ValueError(f"batch_size must be an integer >= 2 (the in-batch losses compare "
                             f"each pair with the others of its batch), got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = check_seed(seed)
        self.drop_remainder = bool(drop_remainder)
        if self.drop_remainder and self.batch_size > self.num_pairs:
            raise ValueError(f"batch_size={self.batch_size} exceeds the {self.num_pairs} pairs, "
                             "so drop_remainder=True would leave no batch")
        if not self.drop_remainder and self.num_pairs % self.batch_size == 1:
            raise ValueError(f"{self.num_pairs} pairs in batches of {self.batch_size} leave a "
                             "last batch of a single pair; set drop_remainder=True or change "
                             "batch_size")
        self.order = EpochOrder(self.num_pairs, self.batch_size, self.seed, self.shuffle,
                                self.drop_remainder)
        self.epoch = 0

    def __len__(self):
        return len(self.order)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range: {len(self)} batches")
        rows = self.order.rows(self.epoch, index)
        x = {"image": self.image_tower.preprocess(self.images[rows]),
             "text": self.token_ids[rows]}
        return x, self.labels[rows]

    def on_epoch_end(self):
        self.epoch += 1
