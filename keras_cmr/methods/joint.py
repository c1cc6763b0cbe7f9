"""Joint methods: class-wise and pair-wise losses trained together in one model.

The naive sum may also serve as MET's source (`config.source_method`): a class-wise model
that the pairing shapes too.
"""

from keras_cmr.methods.registry import register


def build_naive_sum(encoder, num_classes, config, source):
    from keras_cmr import losses
    from keras_cmr.models import SourceModel

    return SourceModel(encoder, num_classes, scale=config.scale,
                       pair_loss=losses.ContrastiveLoss())


def build_dscmr(encoder, num_classes, config, source):
    from keras_cmr.models import DSCMRModel

    return DSCMRModel(encoder, num_classes)


register("naive_sum", build_naive_sum,
         "class-wise cross-entropy + contrastive loss, summed in one model",
         serves_as_source=True)
register("dscmr", build_dscmr,
         "DSCMR: label regression + pairwise likelihood + modality invariance")
