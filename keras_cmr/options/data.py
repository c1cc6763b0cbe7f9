"""The data options: label noise and preprocessing steps, checked once where they enter."""

import dataclasses
import numbers

NOISE_KINDS = ("symmetric", "asymmetric")
PREPROCESSING_STEPS = ("standardize", "l2", "hellinger", "pca_whiten")


def check_noise_arguments(rate, kind, seed):
    """Raise a clear error unless `rate` is in [0, 1], `kind` known and `seed` an integer."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"label noise rate must be a number in [0, 1] (the fraction of "
                         f"training pairs whose label is changed), got {rate!r}")
    if kind not in NOISE_KINDS:
        raise ValueError(f"label noise kind must be one of {NOISE_KINDS}, got {kind!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"label noise seed must be an integer, got {seed!r}")


def check_steps(steps, modality):
    """The steps as a tuple of names; a clear error on a string or an unknown step."""
    if isinstance(steps, str):
        raise TypeError(f"{modality} preprocessing must be a sequence of step names, e.g. "
                        f"[{steps!r}], not a single string")
    steps = tuple(steps)
    for step in steps:
        if step not in PREPROCESSING_STEPS:
            raise ValueError(f"unknown {modality} preprocessing step {step!r}; the steps are "
                             f"{PREPROCESSING_STEPS}")
    return steps


@dataclasses.dataclass(frozen=True)
class LabelNoise:
    """Label noise put on the training labels (definitions in `keras_cmr.datasets.noise`).

    Attributes:
        rate: the fraction of labelled pairs whose label is changed, in [0, 1].
        kind: "symmetric" or "asymmetric".
        seed: the noise's own seed; None: the run's seed.
    """

    rate: float
    kind: str = "symmetric"
    seed: int = None

    def __post_init__(self):
        check_noise_arguments(self.rate, self.kind, 0 if self.seed is None else self.seed)
