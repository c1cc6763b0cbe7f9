"""Embedding transfer from a class-wise source (MET, Kim et al.) and MET's no-source control."""

from keras_cmr.methods.registry import register


def _transfer_builder(**fixed_options):
    def build(encoder, num_classes, config, source):
        from keras_cmr import losses
        from keras_cmr.models import TransferModel

        loss = losses.SoftContrastiveLoss(**{**config.soft_contrastive, **fixed_options})
        return TransferModel(encoder, source.model, loss)

    return build


def build_control(encoder, num_classes, config, source):
    from keras_cmr import losses
    from keras_cmr.models import PairwiseModel

    return PairwiseModel(encoder, losses.SoftContrastiveLoss(**config.control_options()))


register("kim", _transfer_builder(margin="fixed"),
         "embedding transfer with a fixed margin (Kim et al., CVPR 2021)", needs_source=True)
register("met", _transfer_builder(),
         "MET: embedding transfer, relaxed labels and relaxed margins (soft contrastive)",
         needs_source=True)
register("control", build_control,
         "no-source control: MET's loss with w = lam * y (no transfer)")
