"""From closed-form solutions to a `CrossModalEncoder`, and the training arrays they need."""

import numpy as np

from keras_cmr.datasets.container import CrossModalDataset, CrossModalSplit
from keras_cmr.models.encoder import MODALITIES, CrossModalEncoder


def training_arrays(data):
    """`(image, text, labels)` float64 / int64 arrays of the training pairs.

    Args:
        data: a `CrossModalDataset` (its train split), a `CrossModalSplit`, or a tuple
            `(image, text)` / `(image, text, labels)` of arrays, validated as a split.

    Returns:
        `(image, text, labels)`; labels is None for a tuple without labels.

    Raises:
        TypeError: on another kind of input; ValueError as `CrossModalSplit`.
    """
    if isinstance(data, CrossModalDataset):
        data = data.train
    if isinstance(data, tuple) and len(data) == 2:
        split = CrossModalSplit(data[0], data[1], np.zeros(len(data[0])), name="fit")
        return split.image.astype(np.float64), split.text.astype(np.float64), None
    if isinstance(data, tuple) and len(data) == 3:
        data = CrossModalSplit(*data, name="fit")
    if not isinstance(data, CrossModalSplit):
        raise TypeError("expected a CrossModalDataset, a CrossModalSplit or a tuple "
                        f"(image, text[, labels]), got {type(data).__name__}")
    return data.image.astype(np.float64), data.text.astype(np.float64), data.labels


def linear_encoder(maps):
    """A `CrossModalEncoder` of two linear towers `x -> l2_normalize((x - mean) @ weights)`.

    Args:
        maps: dict "image" / "text" -> `(mean, weights)`, `mean` of shape `(d,)` and `weights`
            of shape `(d, k)`; both modalities share `k`.

    Returns:
        A built `CrossModalEncoder` whose towers hold `weights` as kernel and
        `-mean @ weights` as bias.
    """
    widths = {modality: np.shape(maps[modality][1])[1] for modality in MODALITIES}
    if widths["image"] != widths["text"]:
        raise ValueError(f"both towers must share the embedding width, got {widths}")
    encoder = CrossModalEncoder.projection(widths["image"], hidden_dims=(), dropout=0.0)
    encoder.build({modality: (None, np.shape(maps[modality][1])[0]) for modality in MODALITIES})
    for modality in MODALITIES:
        mean, weights = (np.asarray(array, dtype=np.float64) for array in maps[modality])
        layer = getattr(encoder, f"{modality}_tower").output_layer
        layer.set_weights([weights.astype(np.float32), (-mean @ weights).astype(np.float32)])
    return encoder
