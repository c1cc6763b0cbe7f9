"""Class-wise learning: the source model of MET, and the naive class-wise + pair-wise sum."""

import keras
from keras import ops

from keras_cmr import losses
from keras_cmr.distribution import gather_global_batch, replica_share
from keras_cmr.layers import CosineClassifier, PortableGlorotUniform, PrototypeClassifier
from keras_cmr.models.encoder import CrossModalTrainer
from keras_cmr.options import SymmetricCrossEntropyOptions, options_from_mapping

HEADS = ("cosine", "prototype", "regression")


def make_class_head(head, num_classes, scale=16.0, seed=0):
    """The head shared by both towers: class scores from an embedding."""
    if head == "cosine":
        return CosineClassifier(num_classes, scale=scale, name="classifier")
    if head == "prototype":
        return PrototypeClassifier(num_classes, seed=seed, name="classifier")
    if head == "regression":
        return keras.layers.Dense(num_classes, use_bias=False,
                                  kernel_initializer=PortableGlorotUniform(), name="classifier")
    raise ValueError(f"`head` must be one of {HEADS}, got {head!r}.")


@keras.saving.register_keras_serializable(package="keras_cmr")
class SourceModel(CrossModalTrainer):
    """Class-wise learning with one head shared by the image and the text tower.

    The loss is the sum over both towers of the head's objective:
    - `head="cosine"`: normalised-softmax cross-entropy, logits = scale * cos(e, w_c);
    - `head="prototype"`: prototype contrastive loss over fixed random prototypes;
    - `head="regression"`: DSCMR's label regression ||P^T e - y||.
    With a `pair_loss`, `pair_loss_weight` times that pair-wise loss is added: the naive
    combination baseline of the method. Under data-parallel training both terms are taken over
    the global batch (`keras_cmr.distribution`): the exact global mean of the class-wise term
    whatever the split, and the global in-batch negatives of the pair-wise term.

    Args:
        encoder: the `CrossModalEncoder` to train.
        num_classes: number of classes.
        head: "cosine", "prototype" or "regression".
        scale: logit scale of the cosine head.
        seed: seed of the prototype draw (prototype head).
        gce_q: None, or q in (0, 1]: the cosine or prototype head's cross-entropy replaced by
            the generalized cross-entropy of that q (`losses.generalized_cross_entropy`), a
            class-wise loss that wrong labels pull on less.
        sce: None, or a `SymmetricCrossEntropyOptions` (or a dict of its fields): the cosine
            or prototype head's cross-entropy replaced by the symmetric cross-entropy of those
            weights (`losses.symmetric_cross_entropy`), another such loss; not with `gce_q`.
        pair_loss: optional pair-wise loss (naive sum).
        pair_loss_weight: weight of `pair_loss`.
    """

    serialized_children = ("encoder", "pair_loss")

    def __init__(self, encoder, num_classes, head="cosine", scale=16.0, seed=0, gce_q=None,
                 sce=None, pair_loss=None, pair_loss_weight=1.0, **kwargs):
        super().__init__(encoder, **kwargs)
        self.num_classes = int(num_classes)
        self.head = head
        self.scale = float(scale)
        self.seed = int(seed)
        self.classifier = make_class_head(head, self.num_classes, scale=scale, seed=seed)
        for name, value in (("gce_q", gce_q), ("sce", sce)):
            if value is not None and head == "regression":
                raise ValueError(f"`{name}` applies to the class logits of the cosine and "
                                 "prototype heads, not to the regression head.")
        if gce_q is not None and sce is not None:
            raise ValueError("give `gce_q` or `sce`, not both: each replaces the "
                             "cross-entropy.")
        self.gce_q = None if gce_q is None else float(gce_q)
        if isinstance(sce, dict):
            sce = options_from_mapping(SymmetricCrossEntropyOptions, sce, "`sce`")
        if sce is not None and not isinstance(sce, SymmetricCrossEntropyOptions):
            raise TypeError(f"`sce` must be None, a SymmetricCrossEntropyOptions or a dict of "
                            f"its fields, got {type(sce).__name__}.")
        self.sce = sce
        if head == "regression":
            self.class_loss = losses.LabelRegressionLoss()
        elif gce_q is not None:
            self.class_loss = losses.GeneralizedCrossEntropy(q=self.gce_q)
        elif sce is not None:
            self.class_loss = losses.SymmetricCrossEntropy(**sce.to_dict())
        else:
            self.class_loss = losses.ClassWiseCrossEntropy()
        self.pair_loss = pair_loss
        self.pair_loss_weight = float(pair_loss_weight)

    def training_loss(self, x, labels, embeddings, training):
        labels, embeddings = gather_global_batch((labels, embeddings))
        scores = "predictions" if self.head == "regression" else "logits"
        loss = self.class_loss(labels, self.classified(embeddings, scores))
        if self.pair_loss is not None:
            pair_loss = replica_share(self.pair_loss, self.pair_loss(labels, embeddings))
            loss = loss + self.pair_loss_weight * ops.cast(pair_loss, loss.dtype)
        return loss

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "head": self.head,
            "scale": self.scale,
            "seed": self.seed,
            "gce_q": self.gce_q,
            "sce": None if self.sce is None else self.sce.to_dict(),
            "pair_loss_weight": self.pair_loss_weight,
        }
