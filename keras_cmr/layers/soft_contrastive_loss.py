"""The soft contrastive loss as a layer, for plain functional Keras models."""

import keras

from keras_cmr.losses import SoftContrastiveLoss


@keras.saving.register_keras_serializable(package="keras_cmr")
class SoftContrastiveLossLayer(keras.layers.Layer):
    """Adds the mean soft contrastive loss of its inputs with `add_loss`; passes them through.

    `call(image_embeddings, text_embeddings, source_image_embeddings, source_text_embeddings,
    labels=None)` adds mean_i l_i of `keras_cmr.losses.soft_contrastive` over the batch and
    returns `(image_embeddings, text_embeddings)` unchanged, so that a functional model built
    from Keras layers trains with `model.compile(optimizer=...)` (no `loss`) and
    `model.fit(inputs)` without `y`. Source embeddings of None give the no-source control.

    Example:

    ```python
    u, v = SoftContrastiveLossLayer(sigma=1.0)(image_embeddings, text_embeddings,
                                               source_image, source_text, labels=labels)
    ```

    Args:
        **loss_options: the options of `soft_contrastive` (sigma, delta, margin,
            relative_distance, label_mix, intra_modal_weight, form, temperature,
            source_temperature, label_weights, calibration), checked as there; plus the
            Layer arguments `name`, `dtype` and `trainable`.
    """

    def __init__(self, name=None, dtype=None, trainable=True, **loss_options):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        # The Loss class checks the options, and with its default reduction averages l_i.
        self.soft_contrastive = SoftContrastiveLoss(**loss_options)
        self.loss_options = dict(loss_options)

    def call(self, image_embeddings, text_embeddings, source_image_embeddings=None,
             source_text_embeddings=None, labels=None):
        y_pred = {"image": image_embeddings, "text": text_embeddings}
        if source_image_embeddings is not None or source_text_embeddings is not None:
            y_pred.update(source_image=source_image_embeddings,
                          source_text=source_text_embeddings)
        self.add_loss(self.soft_contrastive(labels, y_pred))
        return image_embeddings, text_embeddings

    def compute_output_spec(self, image_embeddings, text_embeddings, *args, **kwargs):
        # Symbolic calls (building a functional model) need the outputs' specs only; running
        # `call` there would compute the loss on placeholders.
        return tuple(keras.KerasTensor(x.shape, dtype=x.dtype)
                     for x in (image_embeddings, text_embeddings))

    def get_config(self):
        return {**super().get_config(), **self.loss_options}
