"""DSCMR (Zhen et al., CVPR 2019) as a baseline trained with the same towers and protocol."""

import keras

from keras_cmr.distribution import gather_global_batch
from keras_cmr.losses import DSCMRLoss
from keras_cmr.models.source import SourceModel


@keras.saving.register_keras_serializable(package="keras_cmr")
class DSCMRModel(SourceModel):
    """Label regression through a shared linear map, plus DSCMR's pair terms.

    Loss: ||P^T u - y|| + ||P^T v - y|| + alpha * pairwise likelihood (theta = cos / 2, over
    image-image, text-text and image-text pairs) + beta * ||u_i - v_i||.

    Args:
        encoder: the `CrossModalEncoder` to train.
        num_classes: number of classes.
        alpha: weight of the pairwise likelihood (DSCMR: 1e-3).
        beta: weight of the modality-invariance term (DSCMR: 0.1).
    """

    serialized_children = ("encoder",)

    def __init__(self, encoder, num_classes, alpha=1e-3, beta=0.1, **kwargs):
        super().__init__(encoder, num_classes, head="regression", **kwargs)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.class_loss = DSCMRLoss(alpha=self.alpha, beta=self.beta)

    def training_loss(self, x, labels, embeddings, training):
        labels, embeddings = gather_global_batch((labels, embeddings))
        return self.class_loss(labels, {
            "image": embeddings["image"],
            "text": embeddings["text"],
            "image_predictions": self.classifier(embeddings["image"]),
            "text_predictions": self.classifier(embeddings["text"]),
        })

    def get_config(self):
        config = super().get_config()
        for fixed in ("head", "scale", "seed", "pair_loss_weight"):
            del config[fixed]  # set by the method, not by the user
        return {**config, "alpha": self.alpha, "beta": self.beta}
