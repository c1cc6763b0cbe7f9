"""Class-wise methods: one shared classifier head on both modalities (MET's stage-1 sources)."""

from keras_cmr.methods.registry import register

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
