"""Pair-wise learning with hard labels: the encoder trained by an in-batch pair loss."""

import math

import keras
from keras import ops

from keras_cmr.distribution import gather_global_batch, replica_share
from keras_cmr.models.encoder import CrossModalTrainer


@keras.saving.register_keras_serializable(package="keras_cmr")
class PairwiseModel(CrossModalTrainer):
    """An encoder trained by a pair-wise loss over the batch's image-text pairs.

    The baselines "pair-wise only" of the method: contrastive (Hadsell), triplet (VSE++),
    InfoNCE (CLIP) and supervised InfoNCE, each a `keras_cmr.losses` object. Under
    data-parallel training the in-batch negatives are those of the global batch, all devices
    together (`keras_cmr.distribution`).

    Example:

    ```python
    model = PairwiseModel(CrossModalEncoder.projection(64), keras_cmr.losses.ContrastiveLoss())
    model.compile(optimizer=keras.optimizers.Adam(1e-4, beta_1=0.5))
    model.fit({"image": x_img, "text": x_txt}, labels, batch_size=100)
    ```

    Args:
        encoder: the `CrossModalEncoder` to train.
        pair_loss: a pair-wise loss taking `y_pred={"image": u, "text": v}`.
        learn_temperature: learn the InfoNCE temperature (CLIP's logit scale), starting from
            the loss's `temperature` and kept above 0.01; the loss must accept a
            `"temperature"` entry in `y_pred`.
    """

    serialized_children = ("encoder", "pair_loss")

    def __init__(self, encoder, pair_loss, learn_temperature=False, **kwargs):
        super().__init__(encoder, **kwargs)
        self.pair_loss = pair_loss
        self.learn_temperature = bool(learn_temperature)
        if self.learn_temperature:
            initial = getattr(pair_loss, "temperature", None)
            if initial is None:
                raise ValueError(
                    f"learn_temperature=True needs a loss with a `temperature`, got "
                    f"{type(pair_loss).__name__}."
                )
            self.log_inverse_temperature = self.add_weight(
                name="log_inverse_temperature", shape=(),
                initializer=keras.initializers.Constant(math.log(1.0 / initial)),
            )

    def training_loss(self, x, labels, embeddings, training):
        labels, embeddings = gather_global_batch((labels, embeddings))
        y_pred = dict(embeddings)
        if self.learn_temperature:
            # CLIP clips the logit scale at 100, i.e. the temperature at 0.01.
            y_pred["temperature"] = ops.exp(-ops.minimum(self.log_inverse_temperature,
                                                         math.log(100.0)))
        return replica_share(self.pair_loss, self.pair_loss(labels, y_pred))

    def get_config(self):
        return {**super().get_config(), "learn_temperature": self.learn_temperature}
