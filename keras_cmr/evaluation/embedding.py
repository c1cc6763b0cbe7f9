"""Embedding evaluation pairs with a model, for `evaluate_model` and the callback."""

import numpy as np

from keras_cmr.distribution import batch_multiple, replicated_inputs


def embed_pairs(model, image, text, batch_size=256):
    """(image embeddings, text embeddings) from `model.predict({"image": ..., "text": ...})`.

    Raises:
        ValueError: when the prediction is not a dict with the keys "image" and "text".
    """
    # A JAX distribution shards every batch over its devices: repeat the last row up to a
    # multiple of their count, and drop the copies' embeddings.
    devices, count = batch_multiple(), len(image)
    if devices > 1:
        pad = -count % devices
        image, text = (np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) if pad else a
                       for a in (np.asarray(image), np.asarray(text)))
        batch_size = -(-batch_size // devices) * devices
    with replicated_inputs():  # multi-process JAX: every process embeds all rows
        outputs = model.predict({"image": image, "text": text}, batch_size=batch_size,
                                verbose=0)
    if not isinstance(outputs, dict) or not {"image", "text"} <= outputs.keys():
        keys = f" with keys {sorted(outputs)}" if isinstance(outputs, dict) else ""
        raise ValueError(
            "model.predict must return a dict with keys 'image' and 'text' (the embeddings), "
            f"got {type(outputs).__name__}{keys}."
        )
    return outputs["image"][:count], outputs["text"][:count]
