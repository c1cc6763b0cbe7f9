"""DSCMR (Zhen et al., CVPR 2019) as a baseline trained with the same towers and protocol."""

import keras

from keras_cmr.distribution import gather_global_batch
from keras_cmr.layers import PortableGlorotUniform
from keras_cmr.losses import DSCMRLoss
from keras_cmr.models.encoder import CrossModalTrainer


@keras.saving.register_keras_serializable(package="keras_cmr")
class DSCMRModel(CrossModalTrainer):
    """Label regression through a shared linear map, plus DSCMR's pair terms.

    Loss: ||P^T u - y|| + ||P^T v - y|| + alpha * pairwise likelihood (theta = cos / 2, over
    image-image, text-text and image-text pairs) + beta * ||u_i - v_i||; P is the bias-free
    linear map `classifier` that both towers share (DSCMR's label space).

    Args:
        encoder: the `CrossModalEncoder` to train.
        num_classes: number of classes.
        alpha: weight of the pairwise likelihood (DSCMR: 1e-3).
        beta: weight of the modality-invariance term (DSCMR: 0.1).
    """

    serialized_children = ("encoder",)

    def __init__(self, encoder, num_classes, alpha=1e-3, beta=0.1, **kwargs):
        super().__init__(encoder, **kwargs)
        self.num_classes = int(num_classes)
        self.alpha = float(alpha)
        self.beta = float(beta)
        # The attribute names are the weight paths of .keras files saved before, when this
        # model was a SourceModel with a regression head.
        self.classifier = keras.layers.Dense(self.num_classes, use_bias=False,
                                             kernel_initializer=PortableGlorotUniform(),
                                             name="classifier")
        self.class_loss = DSCMRLoss(alpha=self.alpha, beta=self.beta)

    def training_loss(self, x, labels, embeddings, training):
        labels, embeddings = gather_global_batch((labels, embeddings))
        return self.class_loss(labels, self.classified(embeddings, "predictions"))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "alpha": self.alpha,
                "beta": self.beta}
