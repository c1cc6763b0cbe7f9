"""Methods built for noisy labels: MRL (Hu et al., CVPR 2021), a rival of the method."""

import dataclasses

from keras_cmr.methods.registry import register
from keras_cmr.options.checks import check_fraction, check_positive


@dataclasses.dataclass(frozen=True)
class MRLOptions:
    """MRL's loss options; the defaults are its code's (utils/config.py: `--beta 0.5`,
    `--tau 1.0`), as those of `keras_cmr.losses.mrl`.

    Attributes:
        beta: the weight of the robust clustering loss (1 - beta: the multimodal contrastive
            loss), in [0, 1].
        temperature: the temperature of both terms, > 0.
    """

    beta: float = 0.5
    temperature: float = 1.0

    def __post_init__(self):
        check_fraction("beta", self.beta)
        check_positive("temperature", self.temperature)


def build_mrl(encoder, num_classes, config, source):
    """MRL on the protocol's towers with `config.options_for("mrl")`; the optimiser, batch
    size and epochs are the protocol's."""
    from keras_cmr.models import MRLModel

    options = config.options_for("mrl")
    return MRLModel(encoder, num_classes, beta=options.beta, temperature=options.temperature)


register("mrl", build_mrl,
         "MRL: robust clustering loss + multimodal contrastive loss (Hu et al., CVPR 2021)",
         serves_as_source=True, options=MRLOptions)
