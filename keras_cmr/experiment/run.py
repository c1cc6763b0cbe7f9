"""One seed's run of the protocol: the data prepared once, every stage seeded the same way.

A `Run` holds what every training stage of a run shares: the prepared data set (label
noise, validation split, preprocessing: `prepare_dataset`, applied here only), the seed that
each stage starts from (`train_selected`), the `EpochPlan`, the `CompiledSteps` (or None)
and the user's callbacks. Its source is resolved once (`source()`), so the methods run on it
that need one learn from the same source, the one each would have trained alone.
"""

import time

from keras_cmr import methods
from keras_cmr.experiment.epochs import ShuffledEpochs
from keras_cmr.experiment.out_of_fold import out_of_fold_source
from keras_cmr.experiment.protocol import measure_test_split, train_selected
from keras_cmr.experiment.setting import prepare_dataset, setting_entries
from keras_cmr.experiment.sources import ChosenSource, TrainedSource, as_source
from keras_cmr.failures import TrainingFailure
from keras_cmr.results import RunResult


class Run:
    """The stages of one seed on one data set.

    Args:
        dataset: the `CrossModalDataset` as loaded (clean labels, not preprocessed).
        config: the `TrainingConfig`.
        seed: the run's seed (noise, validation carving, folds, every stage's start).
        plan: the `EpochPlan` of every stage (default `ShuffledEpochs()`).
        steps: a `CompiledSteps` shared with other runs, or None.
        callbacks: added to every stage's `fit`, after the validation evaluation.
    """

    def __init__(self, dataset, config, seed=0, *, plan=None, steps=None, callbacks=()):
        self.config, self.seed = config, seed
        self.dataset = prepare_dataset(dataset, config, seed)
        self.plan = ShuffledEpochs() if plan is None else plan
        self.steps, self.callbacks = steps, tuple(callbacks)
        self._source = None

    def train(self, method, source=None, config=None):
        """`(model, stage)` of one stage of `method` (`train_selected`) under `config`
        (default: the run's)."""
        return train_selected(method, self.dataset, config or self.config, self.callbacks,
                              source, seed=self.seed, plan=self.plan, steps=self.steps)

    def source(self):
        """The transfer methods' source, made on first use: the out-of-fold embeddings of
        `config.source_folds` > 1 sources, else one `config.source_method` model as a
        `TrainedSource` whose `history` is its stage; with `config.source_candidates`, a
        `ChosenSource`: each of `config.source_settings()` made so, the one with the best
        validation avg mAP kept."""
        if self._source is None:
            settings = self.config.source_settings()
            if len(settings) == 1:
                self._source = self._make_source(self.config)
            else:
                self._source = ChosenSource.best_of({
                    setting.label(): self._make_source(self.config.with_source(setting))
                    for setting in settings})
        return self._source

    def _make_source(self, config):
        if config.source_folds > 1:
            return out_of_fold_source(self.dataset, config, self.seed, self.callbacks,
                                      plan=self.plan, steps=self.steps)
        return TrainedSource(*self.train(config.source_method, config=config))

    def has_source(self):
        """Whether the run's source is made or given already."""
        return self._source is not None

    def use_source(self, source):
        """Makes `source` (a trained source model or a `SourceProvider`) this run's source,
        after checking that it was made for this run's training split."""
        source = as_source(source)
        source.check(self.dataset.train)
        self._source = source

    def method(self, method):
        """Trains `method` (after the source, when it needs one; with `config.method_candidates`
        also the methods it competes with, keeping the best on validation) and measures the
        test split.

        Returns `(model, result, source)`: source is the `SourceProvider` the method learned
        from (None for a method that needs none); result the `RunResult`, as `run_method`'s.
        """
        start = time.perf_counter()
        stages, source = {}, None
        if methods.get(method).needs_source:
            trained_here = not self.has_source()
            source = self.source()
            if trained_here and source.history is not None:
                stages["source"] = source.history
        model, stages[method], choice = self._train_chosen(method, source)
        test, curves = measure_test_split(model.encoder, self.dataset.test, curves=True)
        entries = setting_entries(self.dataset)
        if source is not None:
            entries.update(source.result_entries())
        result = RunResult(method, self.seed, test, test_curves=curves,
                           best_val_avg_map=stages[method]["best_val_avg_map"],
                           epochs=stages[method]["epochs"],
                           seconds=time.perf_counter() - start, history=stages,
                           method_choice=choice, **entries)
        return model, result, source

    def _train_chosen(self, method, source):
        """`(model, stage, choice)` of `method`, or, with `config.method_candidates`, of the
        candidate `method_choice` picks, each trained as it would be alone; choice is None
        without candidates. A candidate whose training fails (`TrainingFailure`) is left out
        of the choice and named in choice["failed"]; when every one fails, `method`'s own
        failure is raised."""
        candidates = self.config.candidates_of(method)
        if len(candidates) == 1:
            return (*self.train(method, source), None)
        trained, failures = {}, {}
        for name in candidates:
            try:
                trained[name] = self.train(name, source)
            except TrainingFailure as failure:
                failures[name] = failure
        if not trained:
            raise failures[method]
        choice = method_choice({name: stage for name, (_, stage) in trained.items()})
        if failures:
            choice["failed"] = {name: str(failure) for name, failure in failures.items()}
        return (*trained[choice["chosen"]], choice)


def method_choice(stages):
    """{"chosen": name, "best_val_avg_map": {name: figure}} of `stages`, {name: stage
    history}: the name whose stage has the highest best validation avg mAP, the first listed
    on a tie."""
    figures = {name: stage["best_val_avg_map"] for name, stage in stages.items()}
    return {"chosen": max(figures, key=figures.get), "best_val_avg_map": figures}


def make_source(dataset, config, seed=0, callbacks=()):
    """The source of the transfer methods for `seed` (`Run.source`)."""
    return Run(dataset, config, seed, callbacks=callbacks).source()


def run_with_source(method, dataset, config, seed=0, source=None, callbacks=(), *, plan=None,
                    steps=None):
    """As `run_method`, and returns the source the method learned from as a third item
    (a `SourceProvider`; None for a method that needs none), for reuse by the next method."""
    run = Run(dataset, config, seed, plan=plan, steps=steps, callbacks=callbacks)
    if source is not None and methods.get(method).needs_source:
        run.use_source(source)
    return run.method(method)


def run_method(method, dataset, config, seed=0, source=None, callbacks=(), *, plan=None,
               steps=None):
    """Trains `method` on `dataset` (validation carved if absent) and measures the test split.

    Returns `(trained_model, result)`: result is a `keras_cmr.results.RunResult`, the test
    figures and precision-recall curves, the best validation average mAP, the epochs run, the
    seconds taken and each stage's validation curve. A method that needs a source ("met",
    "kim") without a given `source` (a trained source model, a `TrainedSource` or an
    `OutOfFoldSource`) gets one from `Run.source` first (with `config.source_folds` > 1:
    out-of-fold embeddings, whose fold histories go to `result.source_folds`). `callbacks`
    are added to every stage's `fit` (after the validation evaluation, so they see its logs);
    `plan` and `steps` as `Run`'s.
    """
    return run_with_source(method, dataset, config, seed, source, callbacks, plan=plan,
                           steps=steps)[:2]
