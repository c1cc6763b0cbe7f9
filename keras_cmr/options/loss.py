"""Loss options checked once: `SoftContrastiveOptions` (the soft contrastive loss) and
`SymmetricCrossEntropyOptions` (the symmetric cross-entropy of a class-wise source)."""

import dataclasses

from keras_cmr.options.checks import (check_choice, check_flag, check_fraction,
                                      check_non_negative, check_number, check_positive,
                                      is_number)

MARGINS = ("relaxed", "fixed")
CALIBRATIONS = ("none", "row", "rank")
FORMS = ("margin", "infonce")
LABEL_WEIGHTS = ("relaxed", "hard")
TRUSTS = ("global", "agreement")


def check_sigma(sigma):
    if sigma != "median" if isinstance(sigma, str) else not (is_number(sigma) and sigma > 0):
        raise ValueError(f'sigma must be a positive number or "median"; received {sigma!r}')


@dataclasses.dataclass(frozen=True)
class SoftContrastiveOptions:
    """The options of the soft contrastive loss, checked when built (see `soft_contrastive`).

    Attributes:
        sigma: bandwidth of the relaxed labels, a positive number or "median".
        delta: margin scale, >= 0.
        margin: "relaxed" (m_ij = delta * (1 - w_ij)) or "fixed" (m_ij = delta).
        relative_distance: divide d_ij by its row mean (margin form only); True or False.
        label_mix: lam in [0, 1], the weight of the hard labels.
        intra_modal_weight: gamma >= 0, the weight of the intra-modal blocks.
        form: "margin" or "infonce".
        temperature: temperature of the target logits (infonce form), > 0; a scalar tensor
            (a learned temperature) is accepted unchecked.
        source_temperature: temperature of the source targets (infonce form), > 0.
        label_weights: "relaxed" (pull by w_ij) or "hard" (pull by y_ij).
        calibration: "none", "row" or "rank"; see `relaxed_labels`.
        trust: how far each pair's hard label is trusted: "global" (every pair mixes with
            lam = label_mix) or "agreement" (pair (i, j) mixes with lam_ij = label_mix *
            a_i * a_j, a_i the source's agreement with pair i's label, given with every
            batch; see `keras_cmr.losses.label_trust`). Margin form only.
        trust_temperature: temperature of the agreement a_i, > 0 (trust="agreement").

    Defaults: sigma 1, delta 1.5, lam 0.75, chosen on the validation split of the Wikipedia
    benchmark (experiments/search.py; docs/results.md).
    """

    sigma: object = 1.0
    delta: float = 1.5
    margin: str = "relaxed"
    relative_distance: bool = True
    label_mix: float = 0.75
    intra_modal_weight: float = 0.0
    form: str = "margin"
    temperature: object = 0.1
    source_temperature: float = 0.1
    label_weights: str = "relaxed"
    calibration: str = "none"
    trust: str = "global"
    trust_temperature: float = 0.1

    def __post_init__(self):
        check_sigma(self.sigma)
        check_choice("calibration", self.calibration, CALIBRATIONS)
        check_non_negative("delta", self.delta)
        check_choice("margin", self.margin, MARGINS)
        check_choice("label_weights", self.label_weights, LABEL_WEIGHTS)
        check_choice("form", self.form, FORMS)
        check_fraction("label_mix", self.label_mix)
        check_non_negative("intra_modal_weight", self.intra_modal_weight)
        check_positive("temperature", self.temperature)
        check_positive("source_temperature", self.source_temperature)
        check_flag("relative_distance", self.relative_distance)
        check_choice("trust", self.trust, TRUSTS)
        check_number("trust_temperature", self.trust_temperature, "> 0")
        check_positive("trust_temperature", self.trust_temperature)
        if self.trust == "agreement" and self.form != "margin":
            raise ValueError(f'trust="agreement" has the margin form only; received '
                             f'form={self.form!r}')

    @classmethod
    def names(cls):
        """The option names, in the order of the constructor's arguments."""
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def from_arguments(cls, arguments):
        """The options named in `arguments`, a mapping holding every option and maybe other
        names (a loss function's or constructor's `locals()`)."""
        return cls(**{name: arguments[name] for name in cls.names()})

    def to_dict(self):
        """The options as plain keyword arguments (`SoftContrastiveLoss`'s, a config's)."""
        return {name: getattr(self, name) for name in self.names()}


@dataclasses.dataclass(frozen=True)
class SymmetricCrossEntropyOptions:
    """The weights of the symmetric cross-entropy, alpha * CE + beta * RCE (see
    `keras_cmr.losses.symmetric_cross_entropy`), checked when built.

    Attributes:
        alpha: weight of the cross-entropy, >= 0.
        beta: weight of the reverse cross-entropy, >= 0; alpha + beta must be > 0.

    Defaults: alpha 0.1, beta 1.0, the choice Wang et al. (ICCV 2019) state for CIFAR-10, not
    tuned here.
    """

    alpha: float = 0.1
    beta: float = 1.0

    def __post_init__(self):
        check_non_negative("alpha", self.alpha)
        check_non_negative("beta", self.beta)
        if self.alpha + self.beta <= 0:
            raise ValueError(f"alpha + beta must be > 0; received alpha={self.alpha!r}, "
                             f"beta={self.beta!r}")

    def to_dict(self):
        """The options as plain keyword arguments."""
        return dataclasses.asdict(self)
