"""Pair-wise methods: one in-batch pair loss on the two towers, no classifier."""

from keras_cmr.methods.registry import register

# (name, loss class in keras_cmr.losses, description)
PAIR_LOSSES = (
    ("contrastive", "ContrastiveLoss", "pair-wise only: contrastive loss, hard labels (Hadsell)"),
    ("triplet", "TripletLoss", "pair-wise only: triplet loss, hardest negative (VSE++)"),
    ("infonce", "InfoNCELoss", "pair-wise only: symmetric InfoNCE (CLIP)"),
    ("supervised_infonce", "SupervisedInfoNCELoss",
     "pair-wise only: supervised InfoNCE (same-class pairs positive)"),
)


def loss_classes():
    """{method name: its loss class} (imports Keras)."""
    from keras_cmr import losses

    return {name: getattr(losses, loss) for name, loss, _ in PAIR_LOSSES}


def _pairwise_builder(loss_name):
    def build(encoder, num_classes, config, source):
        from keras_cmr import losses
        from keras_cmr.models import PairwiseModel

        return PairwiseModel(encoder, getattr(losses, loss_name)())

    return build


for _name, _loss, _description in PAIR_LOSSES:
    register(_name, _pairwise_builder(_loss), _description)
