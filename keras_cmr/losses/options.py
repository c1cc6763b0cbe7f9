"""The losses' options, checked once where they enter: `SoftContrastiveOptions` and the checks.

This module imports no framework (only the standard library), so a config can build and check
the options before a backend is chosen. Importing it as `keras_cmr.losses.options` still runs
`keras_cmr/__init__.py`, which imports Keras: the module is framework-free, the package is not.

Each check takes a Python value and raises ValueError naming the option and the value. A tensor
is accepted where an option may be learned (a temperature) and is not checked.
"""

import collections.abc
import dataclasses
import math
import numbers

MARGINS = ("relaxed", "fixed")
CALIBRATIONS = ("none", "row", "rank")
FORMS = ("margin", "infonce")
LABEL_WEIGHTS = ("relaxed", "hard")


def _is_number(value):
    """A finite real number; bools are refused (True would read as 1)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def _is_tensor(value):
    # Duck-typed, so that no framework is imported: every backend's tensors have both.
    return hasattr(value, "shape") and hasattr(value, "dtype")


def _check_number(name, value, bound):
    if not _is_number(value):
        raise ValueError(f"{name} must be a finite number {bound}; received {name}={value!r}")


def check_non_negative(name, value):
    _check_number(name, value, ">= 0")
    if value < 0:
        raise ValueError(f"{name} must be >= 0; received {name}={value!r}")


def check_positive(name, value):
    """A number > 0, or a tensor (e.g. a learned temperature), which is not checked."""
    if _is_tensor(value) and not isinstance(value, numbers.Real):
        return
    _check_number(name, value, "> 0")
    if value <= 0:
        raise ValueError(f"{name} must be > 0; received {name}={value!r}")


def check_choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}; received {name}={value!r}")


def check_flag(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; received {name}={value!r}")


def check_sigma(sigma):
    if sigma != "median" if isinstance(sigma, str) else not (_is_number(sigma) and sigma > 0):
        raise ValueError(f'sigma must be a positive number or "median"; received {sigma!r}')


def check_label_mix(label_mix):
    _check_number("label_mix", label_mix, "in [0, 1]")
    if not 0.0 <= label_mix <= 1.0:
        raise ValueError(f"label_mix must be in [0, 1]; received label_mix={label_mix!r}")


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

    def __post_init__(self):
        check_sigma(self.sigma)
        check_choice("calibration", self.calibration, CALIBRATIONS)
        check_non_negative("delta", self.delta)
        check_choice("margin", self.margin, MARGINS)
        check_choice("label_weights", self.label_weights, LABEL_WEIGHTS)
        check_choice("form", self.form, FORMS)
        check_label_mix(self.label_mix)
        check_non_negative("intra_modal_weight", self.intra_modal_weight)
        check_positive("temperature", self.temperature)
        check_positive("source_temperature", self.source_temperature)
        check_flag("relative_distance", self.relative_distance)

    @classmethod
    def from_dict(cls, mapping, where=None):
        """The options of a plain mapping (an experiment file's object), missing keys at their
        defaults; an unknown key is an error naming the known ones (and `where`, e.g. the file
        and field, when given)."""
        prefix = f"{where}: " if where else ""
        if not isinstance(mapping, collections.abc.Mapping):
            raise ValueError(f"{prefix}the soft contrastive options must be a JSON object "
                             f"(a dict); received {type(mapping).__name__}")
        known = cls.names()
        unknown = sorted(set(mapping) - set(known), key=str)
        if unknown:
            raise ValueError(f"{prefix}unknown soft contrastive option(s) {unknown}; known: "
                             f"{sorted(known)}")
        try:
            return cls(**mapping)
        except ValueError as error:
            raise ValueError(f"{prefix}{error}") from None

    @classmethod
    def names(cls):
        """The option names, in the order of the constructor's arguments."""
        return tuple(field.name for field in dataclasses.fields(cls))

    def to_dict(self):
        """The options as plain keyword arguments (`SoftContrastiveLoss`'s, a config's)."""
        return {name: getattr(self, name) for name in self.names()}
