"""Pair-wise methods: one in-batch pair loss on the two towers, no classifier.

Supervised InfoNCE may also serve as MET's source (`config.source_method`): it learns from
the pairing as well as from the labels, so its similarities hold what the pairing says where
noisy labels mislead a class-wise source.
"""

from keras_cmr.methods.registry import register

# (name, loss class in keras_cmr.losses, description, serves as a source)
PAIR_LOSSES = (
    ("contrastive", "ContrastiveLoss", "pair-wise only: contrastive loss, hard labels (Hadsell)",
     False),
    ("triplet", "TripletLoss", "pair-wise only: triplet loss, hardest negative (VSE++)", False),
    ("infonce", "InfoNCELoss", "pair-wise only: symmetric InfoNCE (CLIP)", False),
    ("supervised_infonce", "SupervisedInfoNCELoss",
     "pair-wise only: supervised InfoNCE (same-class pairs positive)", True),
)


def _pairwise_builder(loss_name):
    def build(encoder, num_classes, config, source):
        from keras_cmr import losses
        from keras_cmr.models import PairwiseModel

        return PairwiseModel(encoder, getattr(losses, loss_name)())

    return build


for _name, _loss, _description, _serves in PAIR_LOSSES:
    register(_name, _pairwise_builder(_loss), _description, serves_as_source=_serves)
