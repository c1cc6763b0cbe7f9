"""Class-wise methods: one shared classifier head on both modalities (MET's stage-1 sources)."""

import dataclasses

from keras_cmr.methods.registry import register
from keras_cmr.options import SymmetricCrossEntropyOptions
from keras_cmr.options.checks import check_unit_interval

# (name, `SourceModel` head, description)
SOURCES = (
    ("source", "cosine",
     "class-wise only: normalised-softmax cross-entropy, shared classifier (stage 1)"),
    ("source_pcl", "prototype",
     "class-wise only: prototype contrastive loss, fixed random prototypes"),
    ("source_regression", "regression",
     "class-wise only: label regression (DSCMR's linear classifier)"),
)
SOURCE_HEADS = {name: head for name, head, _ in SOURCES}


def _source_builder(head):
    def build(encoder, num_classes, config, source):
        from keras_cmr.models import SourceModel

        return SourceModel(encoder, num_classes, head=head, scale=config.scale)

    return build


for _name, _head, _description in SOURCES:
    register(_name, _source_builder(_head), _description, serves_as_source=True)


@dataclasses.dataclass(frozen=True)
class GeneralizedCrossEntropyOptions:
    """q in (0, 1] of the generalized cross-entropy; 0.7 is Zhang and Sabuncu's choice
    (NeurIPS 2018), not tuned here."""

    q: float = 0.7

    def __post_init__(self):
        check_unit_interval("q", self.q)


def build_pcl_gce(encoder, num_classes, config, source):
    """The prototype source with the generalized cross-entropy on its prototype logits."""
    from keras_cmr.models import SourceModel

    return SourceModel(encoder, num_classes, head="prototype", scale=config.scale,
                       gce_q=config.options_for("source_pcl_gce").q)


register("source_pcl_gce", build_pcl_gce,
         "class-wise only: prototype logits, generalized cross-entropy (noise-robust)",
         serves_as_source=True, options=GeneralizedCrossEntropyOptions)


def build_pcl_sce(encoder, num_classes, config, source):
    """The prototype source with the symmetric cross-entropy on its prototype logits (alpha
    0.1, beta 1.0 by default: Wang et al.'s CIFAR-10 choice, ICCV 2019, not tuned here)."""
    from keras_cmr.models import SourceModel

    return SourceModel(encoder, num_classes, head="prototype", scale=config.scale,
                       sce=config.options_for("source_pcl_sce"))


register("source_pcl_sce", build_pcl_sce,
         "class-wise only: prototype logits, symmetric cross-entropy (noise-robust)",
         serves_as_source=True, options=SymmetricCrossEntropyOptions)
