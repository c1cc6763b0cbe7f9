"""Frozen backbone features of a raw image/caption data set, for the feature-based pipeline.

The method was published on features of frozen CLIP encoders: `extract_features` runs each
tower's backbone and pooling (not its head) over every split, batch by batch, and returns a
`CrossModalDataset` that `save_npz` writes and `load_dataset("npz:PATH")` reads back, so every
model, method and command of keras_cmr runs on it.
"""

import keras
import numpy as np

from keras_cmr.datasets import CrossModalDataset, CrossModalSplit
from keras_cmr.utils.checks import check_positive_int


class _PooledBackbone(keras.Model):
    """A tower without its head: preprocessed inputs -> pooled backbone features."""

    def __init__(self, tower, **kwargs):
        super().__init__(**kwargs)
        self.tower = tower

    def build(self, input_shape):
        # The backbone comes built from its preset; the tower's head is not used here.
        self.built = True

    def call(self, inputs):
        return self.tower._features(inputs, training=False)


def _features(extractor, batches, count, batch_size, description, verbose):
    """Runs `extractor` on each preprocessed batch, with a progress bar.

    A short last batch is padded to `batch_size` (its last row repeated, the copies' features
    dropped), so the compiled predict step keeps one input shape and is traced once.
    """
    progress = keras.utils.Progbar(count, unit_name="pair") if verbose else None
    if progress is not None:
        print(description)
    chunks = []
    for batch in batches:
        rows = len(batch)
        if rows < batch_size:
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - rows, axis=0)])
        features = extractor.predict_on_batch(batch)
        chunks.append(np.asarray(features, dtype=np.float32)[:rows])
        if progress is not None:
            progress.add(rows)
    return np.concatenate(chunks)


def extract_features(dataset, image_tower, text_tower, batch_size=32, verbose=1):
    """Pooled backbone features of every split of a raw data set.

    Example:

    ```python
    data = load_raw_pairs("my_pairs/captions.jsonl", image_size=(224, 224))
    image_tower, text_tower = clip_towers("./clip_preset")
    features = extract_features(data, image_tower, text_tower, batch_size=64)
    save_npz(features, "features.npz")        # then: keras-cmr train --data npz:features.npz
    ```

    Args:
        dataset: a `keras_cmr.datasets.RawDataset` (`load_raw_pairs`).
        image_tower: an `ImageTower`; its backbone and pooling give the image features.
        text_tower: a `TextTower`; its backbone and pooling give the text features.
        batch_size: pairs per batch (images are decoded one batch at a time).
        verbose: show a progress bar per split and modality.

    Returns:
        A `CrossModalDataset` with the same splits, labels, classes and name.
    """
    batch_size = check_positive_int(batch_size, "`batch_size`")
    image_features = _PooledBackbone(image_tower, name="image_features")
    text_features = _PooledBackbone(text_tower, name="text_features")
    splits = {}
    for name, split in dataset.splits.items():
        images = _features(
            image_features,
            (image_tower.preprocess(split.read_images(start, start + batch_size))
             for start in range(0, split.num_pairs, batch_size)),
            split.num_pairs, batch_size, f"{name}: image features", verbose)
        texts = _features(
            text_features,
            (text_tower.preprocess(split.captions[start:start + batch_size])
             for start in range(0, split.num_pairs, batch_size)),
            split.num_pairs, batch_size, f"{name}: text features", verbose)
        splits[name] = CrossModalSplit(images, texts, split.labels, name=name)
    return CrossModalDataset(splits["train"], splits["test"], num_classes=dataset.num_classes,
                             val=splits.get("val"), name=dataset.name,
                             allow_unseen_classes=dataset.allow_unseen_classes)
