"""Embedding transfer from a class-wise source (MET, Kim et al.), MET with selective label
trust, and MET's no-source control."""

import dataclasses

from keras_cmr.methods.registry import register
from keras_cmr.options import SoftContrastiveOptions


def _transfer_builder(**fixed_options):
    def build(encoder, num_classes, config, source):
        from keras_cmr import losses
        from keras_cmr.models import TransferModel

        options = dataclasses.replace(config.soft_contrastive, **fixed_options)
        return TransferModel(encoder, source.model, losses.SoftContrastiveLoss.from_options(
            options))

    return build


def build_control(encoder, num_classes, config, source):
    """MET's loss without a source; its options are MET's (`config.soft_contrastive`) unless
    `config.method_options` gives it its own."""
    from keras_cmr import losses
    from keras_cmr.models import PairwiseModel

    options = config.method_options.get("control", config.soft_contrastive)
    if options.trust != "global":
        raise ValueError(f'the no-source control has no source to agree with its labels: its '
                         f'options need trust="global" (received trust={options.trust!r}); '
                         f'give it its own, method_options {{"control": {{...}}}}')
    return PairwiseModel(encoder, losses.SoftContrastiveLoss.from_options(options))


register("kim", _transfer_builder(margin="fixed"),
         "embedding transfer with a fixed margin (Kim et al., CVPR 2021)", needs_source=True)
register("met", _transfer_builder(),
         "MET: embedding transfer, relaxed labels and relaxed margins (soft contrastive)",
         needs_source=True)
register("met_selective", _transfer_builder(trust="agreement"),
         "MET whose pairs trust their labels as far as the source agrees with them",
         needs_source=True)
register("control", build_control,
         "no-source control: MET's loss with w = lam * y (no transfer)",
         options=SoftContrastiveOptions)
