"""One seed's run of one method as a typed record: a `RunResult`, or a `RunFailure`.

`to_dict()` gives the JSON layout of a run in `keras-cmr compare --json` files ("runs") and in
`figures.json` ("results"); `result_from_dict` reads that layout back into the right type.
`failed` tells the two apart. A leaf module: it imports nothing, so a results file can be read
without a framework.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class RunResult:
    """A run that trained and was measured on the test split.

    Attributes:
        method: the method's name in the registry (`keras-cmr train` names its source's row
            "source (stage 1)").
        seed: the run's seed.
        test: the test figures of the selected weights ({"i2t_map", "t2i_map", "avg_map"}).
        best_val_avg_map: the best validation average mAP of the method's stage.
        epochs: the epochs the method's stage ran.
        seconds: the run's wall time, its source's training included.
        history: {stage name: that stage's history}: the method's stage and, when the run
            trained one model as its source, "source"; a history holds "epochs",
            "best_val_avg_map", "val_avg_map" and "loss".
        test_curves: the 11-point interpolated precision-recall curves of the test split,
            {"recall", "i2t", "t2i"}; None when not kept.
        label_noise: the noise of the training labels ({"rate", "kind", ...}); None for the
            labels as loaded.
        preprocessing: {"image": steps, "text": steps}; None without preprocessing.
        source_folds: the histories of the out-of-fold sources; None without them.
        source_choice: {"chosen": label, "best_val_avg_map": {label: figure}} when the run
            chose its source among several on the validation split; None otherwise.
        method_choice: {"chosen": method, "best_val_avg_map": {method: figure}} when the
            method competed with others on the validation split (`method_candidates`) and the
            run's figures are those of the chosen one, with "failed": {method: message} for
            candidates whose training failed; None otherwise.
    """

    failed = False  # a class attribute, not a field: a result is never a failure

    method: str
    seed: int
    test: dict
    best_val_avg_map: float
    epochs: int
    seconds: float
    history: dict
    test_curves: dict | None = None
    label_noise: dict | None = None
    preprocessing: dict | None = None
    source_folds: list | None = None
    source_choice: dict | None = None
    method_choice: dict | None = None

    def choices(self):
        """{"source": source_choice, "method": method_choice}, the ones that are not None."""
        return {what: choice for what, choice in (("source", self.source_choice),
                                                  ("method", self.method_choice))
                if choice is not None}

    def to_dict(self):
        """The JSON layout: method, seed, test, test_curves, best_val_avg_map, epochs,
        seconds, history, label_noise, preprocessing, source_folds, source_choice,
        method_choice, in this order; an optional entry that is None is left out."""
        entries = {"method": self.method, "seed": self.seed, "test": self.test}
        if self.test_curves is not None:
            entries["test_curves"] = self.test_curves
        entries.update(best_val_avg_map=self.best_val_avg_map, epochs=self.epochs,
                       seconds=self.seconds, history=self.history)
        for name in ("label_noise", "preprocessing", "source_folds", "source_choice",
                     "method_choice"):
            if getattr(self, name) is not None:
                entries[name] = getattr(self, name)
        return entries


@dataclasses.dataclass(frozen=True)
class RunFailure:
    """A run that raised `keras_cmr.failures.TrainingFailure` (diverged or collapsed).

    Attributes:
        method: the method's name in the registry.
        seed: the run's seed.
        failure: the failure's message.
        label_noise: the noise of the run's training labels when a study that varies it
            records it ({"rate", "kind"}); None otherwise.
    """

    failed = True  # a class attribute, not a field

    method: str
    seed: int
    failure: str
    label_noise: dict | None = None

    def to_dict(self):
        """The JSON layout: method, seed, failure, and label_noise when not None."""
        entries = {"method": self.method, "seed": self.seed, "failure": self.failure}
        if self.label_noise is not None:
            entries["label_noise"] = self.label_noise
        return entries


def result_from_dict(mapping):
    """The `RunFailure` (a mapping with "failure") or `RunResult` that `to_dict` wrote as
    `mapping`.

    Raises:
        ValueError: for a mapping that is not one: not a dict, an entry missing (named; the
            method and the seed first) or an entry of neither type.
    """
    if not isinstance(mapping, dict):
        raise ValueError(f"a run must be a JSON object, got {type(mapping).__name__}")
    kind = RunFailure if "failure" in mapping else RunResult
    fields = dataclasses.fields(kind)
    for field in fields:
        if field.default is dataclasses.MISSING and field.name not in mapping:
            raise ValueError(f"a run has no {field.name!r} entry (it has {sorted(mapping)})")
    unknown = sorted(set(mapping) - {field.name for field in fields})
    if unknown:
        raise ValueError(f"a run of {mapping['method']!r} has unknown entries {unknown}")
    return kind(**mapping)
