"""Embedding transfer: a fresh target encoder learns pair-wise from a frozen source."""

import keras
from keras import ops

from keras_cmr.distribution import gather_global_batch, replica_share
from keras_cmr.losses import SoftContrastiveLoss
from keras_cmr.models.encoder import CrossModalEncoder, CrossModalTrainer


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

    Args:
        target: the fresh `CrossModalEncoder` to train (any tower shapes).
        source: the trained source, a `CrossModalTrainer` or a `CrossModalEncoder`. Its
            encoder is frozen in place (`trainable = False`) and kept as `model.source`.
        transfer_loss: the loss, `SoftContrastiveLoss()` (METHOD.md defaults) when None.
    """

    serialized_children = ("encoder", "source", "transfer_loss")

    def __init__(self, encoder, source, transfer_loss=None, **kwargs):
        super().__init__(encoder, **kwargs)
        if isinstance(source, CrossModalTrainer):
            source = source.encoder
        if not isinstance(source, CrossModalEncoder):
            raise TypeError(
                "`source` must be a trained keras_cmr SourceModel or CrossModalEncoder, got "
                f"{type(source).__name__}."
            )
        # On TensorFlow, Keras does not pass `trainable=False` down to sublayers when the
        # model already reads False (a source rebuilt from a saved config whose towers made
        # trainable sublayers); switching it on first makes every sublayer follow.
        source.trainable = True
        source.trainable = False
        self.source = source
        self.transfer_loss = SoftContrastiveLoss() if transfer_loss is None else transfer_loss

    def build(self, input_shape):
        super().build(input_shape)
        if not self.source.built:  # a source rebuilt from a saved config, before its weights
            self.source.build(input_shape)

    @property
    def target(self):
        """The trained target encoder: what retrieval uses and what to save for serving."""
        return self.encoder

    def training_loss(self, x, labels, embeddings, training):
        source = self.source(x, training=False)
        labels, y_pred = gather_global_batch((labels, {
            "image": embeddings["image"],
            "text": embeddings["text"],
            "source_image": ops.stop_gradient(source["image"]),
            "source_text": ops.stop_gradient(source["text"]),
        }))
        return replica_share(self.transfer_loss, self.transfer_loss(labels, y_pred))
