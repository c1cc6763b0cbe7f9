"""The transfer's source settings: which source model, trained on how many folds."""

import dataclasses
import numbers


@dataclasses.dataclass(frozen=True)
class SourceSetting:
    """One way to make a transfer's source.

    Attributes:
        method: a registered `serves_as_source` method (checked by `TrainingConfig`, which
            knows the registry).
        folds: 1, one source trained on every training pair; k >= 2, out-of-fold sources
            (`keras_cmr.experiment.out_of_fold_source`).
    """

    method: str
    folds: int = 1

    def __post_init__(self):
        if not isinstance(self.method, str) or not self.method:
            raise ValueError(f"a source's method must be a method name; received "
                             f"method={self.method!r}")
        if (isinstance(self.folds, bool) or not isinstance(self.folds, numbers.Integral)
                or self.folds < 1):
            raise ValueError(f"a source's folds must be 1 (one source) or an integer >= 2 "
                             f"(out-of-fold sources); received folds={self.folds!r}")

    def label(self):
        """The setting as a short name: "mrl", or "source_pcl x5" for out-of-fold sources."""
        return self.method if self.folds == 1 else f"{self.method} x{self.folds}"
