"""Methods built for noisy labels: MRL (Hu et al., CVPR 2021), a rival of the method."""

from keras_cmr.methods.registry import register


def build_mrl(encoder, num_classes, config, source):
    """MRL on the protocol's towers with its code's loss defaults (`keras_cmr.losses.mrl`:
    beta 0.5, temperature 1); the optimiser, batch size and epochs are the protocol's."""
    from keras_cmr.losses.mrl import MRL_BETA, MRL_TEMPERATURE
    from keras_cmr.models import MRLModel

    return MRLModel(encoder, num_classes, beta=MRL_BETA, temperature=MRL_TEMPERATURE)


register("mrl", build_mrl,
         "MRL: robust clustering loss + multimodal contrastive loss (Hu et al., CVPR 2021)")
