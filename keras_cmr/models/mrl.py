"""MRL (Hu et al., CVPR 2021) as a baseline trained with the same towers and protocol."""

import keras

from keras_cmr.distribution import gather_global_batch, replica_share
from keras_cmr.layers import CosineClassifier
from keras_cmr.losses import MRLLoss
from keras_cmr.losses.mrl import MRL_BETA, MRL_TEMPERATURE
from keras_cmr.models.encoder import CrossModalTrainer


@keras.saving.register_keras_serializable(package="keras_cmr")
class MRLModel(CrossModalTrainer):
    """Robust clustering on class centres shared by both towers, plus multimodal contrast.

    Loss: beta * robust clustering loss of both towers' logits + (1 - beta) * multimodal
    contrastive loss of the embeddings (`keras_cmr.losses.mrl`). The logits are the cosines
    of an embedding to C class centres (a `CosineClassifier` of scale 1): MRL's code
    (`main_noisy.py`) multiplies its L2-normalised embeddings by a matrix whose columns it
    renormalises before every step. Differences: MRL initialises that matrix orthogonally,
    the classifier here draws Glorot-uniform columns; MRL takes the gradient with respect to
    the renormalised columns, here it passes through the normalisation.

    Args:
        encoder: the `CrossModalEncoder` to train.
        num_classes: number of classes.
        beta: weight of the robust clustering loss, in [0, 1] (MRL's code default 0.5).
        temperature: divisor of the logits of both terms (MRL's code default 1).
    """

    serialized_children = ("encoder",)

    def __init__(self, encoder, num_classes, beta=MRL_BETA, temperature=MRL_TEMPERATURE,
                 **kwargs):
        super().__init__(encoder, **kwargs)
        self.num_classes = int(num_classes)
        self.beta = float(beta)
        self.temperature = float(temperature)
        self.classifier = CosineClassifier(self.num_classes, scale=1.0, name="classifier")
        self.mrl_loss = MRLLoss(beta=self.beta, temperature=self.temperature)

    def training_loss(self, x, labels, embeddings, training):
        labels, embeddings = gather_global_batch((labels, embeddings))
        value = self.mrl_loss(labels, self.classified(embeddings, "logits"))
        return replica_share(self.mrl_loss, value)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "beta": self.beta,
                "temperature": self.temperature}
