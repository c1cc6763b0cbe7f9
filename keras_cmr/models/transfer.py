"""Embedding transfer: a fresh target encoder learns pair-wise from a frozen source."""

import keras
import numpy as np
from keras import ops

from keras_cmr.distribution import gather_global_batch, replica_share
from keras_cmr.losses import SoftContrastiveLoss
from keras_cmr.models.encoder import CrossModalEncoder, CrossModalTrainer

PRECOMPUTED_KEYS = ("source_image", "source_text")
_NO_SOURCE = ("TransferModel has no source model: every batch must bring precomputed source "
              "embeddings, fit({'image': ..., 'text': ..., 'source_image': ..., "
              "'source_text': ...}, labels)")


@keras.saving.register_keras_serializable(package="keras_cmr")
class TransferModel(CrossModalTrainer):
    """MET stage 2: the target encoder trained by the soft contrastive loss.

    The frozen source (a trained `SourceModel` or its encoder) embeds each batch in
    inference mode; its embeddings give the relaxed labels and margins of the soft
    contrastive loss, and no gradient reaches it. Under data-parallel training each device
    embeds its slice and the loss compares the pairs of the global batch
    (`keras_cmr.distribution`). After training, `model.encoder` (also `model.target`) is the
    whole retrieval model: save it alone for serving.

    Example:

    ```python
    transfer = TransferModel(CrossModalEncoder.projection(64), source_model)
    transfer.compile(optimizer=keras.optimizers.Adam(1e-4, beta_1=0.5))
    transfer.fit({"image": x_img, "text": x_txt}, labels, batch_size=100)
    transfer.target.save("target.keras")
    ```

    Precomputed source embeddings (e.g. out-of-fold ones from
    `keras_cmr.experiment.out_of_fold_source`, where each pair is embedded by a source that
    never trained on it) replace the source model: pass them as two more inputs,
    `fit({"image": ..., "text": ..., "source_image": s, "source_text": t}, labels)`, with
    `source=None` (or with a source, which they then override).

    Args:
        target: the fresh `CrossModalEncoder` to train (any tower shapes).
        source: the trained source, a `CrossModalTrainer` or a `CrossModalEncoder`. Its
            encoder is frozen in place (`trainable = False`) and kept as `model.source`.
            None: every batch brings its source embeddings as inputs (see above).
        transfer_loss: the loss, `SoftContrastiveLoss()` (METHOD.md defaults) when None.
    """

    serialized_children = ("encoder", "source", "transfer_loss")

    def __init__(self, encoder, source=None, transfer_loss=None, **kwargs):
        super().__init__(encoder, **kwargs)
        if isinstance(source, CrossModalTrainer):
            source = source.encoder
        if source is not None and not isinstance(source, CrossModalEncoder):
            raise TypeError(
                "`source` must be a trained keras_cmr SourceModel or CrossModalEncoder (or None "
                f"with precomputed source embeddings), got {type(source).__name__}."
            )
        if source is not None:
            # On TensorFlow, Keras does not pass `trainable=False` down to sublayers when the
            # model already reads False (a source rebuilt from a saved config whose towers
            # made trainable sublayers); switching it on first makes every sublayer follow.
            source.trainable = True
            source.trainable = False
        self.source = source
        self.transfer_loss = SoftContrastiveLoss() if transfer_loss is None else transfer_loss

    def build(self, input_shape):
        super().build(input_shape)
        if self.source is not None and not self.source.built:  # rebuilt from a saved config
            self.source.build(input_shape)

    @property
    def target(self):
        """The trained target encoder: what retrieval uses and what to save for serving."""
        return self.encoder

    def _check_fit_arrays(self, x, y, batch_size):
        super()._check_fit_arrays(x, y, batch_size)
        given = [key for key in PRECOMPUTED_KEYS if key in x]
        if given and len(given) < 2:
            raise ValueError(f"fit: pass both {PRECOMPUTED_KEYS} (precomputed source "
                             f"embeddings) or neither; received only {given[0]!r}")
        if not given and self.source is None:
            raise ValueError(_NO_SOURCE)
        for key in given:
            array = np.asarray(x[key])
            if array.ndim != 2 or len(array) != len(x["image"]):
                raise ValueError(f"fit: {key} must be a 2-D array with one row per pair "
                                 f"({len(x['image'])}); received shape {array.shape}")
            if not np.all(np.isfinite(array)):
                row = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
                raise ValueError(f"fit: {key} row {row} holds NaN or inf")

    def training_loss(self, x, labels, embeddings, training):
        if all(key in x for key in PRECOMPUTED_KEYS):
            source = {"image": x["source_image"], "text": x["source_text"]}
        elif self.source is None:
            raise ValueError(_NO_SOURCE)
        else:
            source = self.source(x, training=False)
        labels, y_pred = gather_global_batch((labels, {
            "image": embeddings["image"],
            "text": embeddings["text"],
            "source_image": ops.stop_gradient(source["image"]),
            "source_text": ops.stop_gradient(source["text"]),
        }))
        return replica_share(self.transfer_loss, self.transfer_loss(labels, y_pred))
