"""Train and compare methods under one protocol: same towers, optimiser, budget, selection.

Every method is selected by early stopping on the validation average mAP (never the test
split); the test split is embedded once, by the selected weights. The methods are those of
the registry, `keras_cmr.methods`.
"""

import time
import warnings

import keras

from keras_cmr import methods
from keras_cmr.config import TrainingConfig
from keras_cmr.experiment.compiled import sharing_compiled_steps
from keras_cmr.experiment.out_of_fold import out_of_fold_source
from keras_cmr.experiment.setting import prepare_dataset, setting_entries
from keras_cmr.experiment.protocol import (build_model, fit_selected, make_encoder,
                                           measure_test_split, train_selected)
from keras_cmr.experiment.sources import (OutOfFoldSource, SourceProvider, TrainedSource,
                                          as_source)
from keras_cmr.experiment.tables import format_progress, format_table, summarize
from keras_cmr.failures import TrainingFailure


def make_source(dataset, config, seed=0, callbacks=()):
    """The source of the transfer methods for `seed` (validation split carved if absent).

    With `config.source_folds` > 1: the `out_of_fold_source` embeddings; else one
    `config.source_method` model trained under the protocol, as a `TrainedSource` whose
    `history` is its training stage.
    """
    dataset = prepare_dataset(dataset, config, seed)
    if config.source_folds > 1:
        return out_of_fold_source(dataset, config, seed, callbacks)
    keras.utils.set_random_seed(seed)
    return TrainedSource(*train_selected(config.source_method, dataset, config, callbacks))


def run_with_source(method, dataset, config, seed=0, source=None, callbacks=()):
    """As `run_method`, and returns the source the method learned from as a third item
    (a `SourceProvider`; None for a method that needs none), for reuse by the next method."""
    dataset = prepare_dataset(dataset, config, seed)
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    stages = {}
    if not methods.get(method).needs_source:
        source = None
    elif source is None:
        source = make_source(dataset, config, seed, callbacks)
        if source.history is not None:
            stages["source"] = source.history
    else:
        source = as_source(source)
        source.check(dataset.train)
    model, stages[method] = train_selected(method, dataset, config, callbacks, source)
    test, curves = measure_test_split(model.encoder, dataset.test, curves=True)
    result = {
        "method": method,
        "seed": seed,
        "test": test,
        "test_curves": curves,
        "best_val_avg_map": stages[method]["best_val_avg_map"],
        "epochs": stages[method]["epochs"],
        "seconds": time.perf_counter() - start,
        "history": stages,
    }
    result.update(setting_entries(dataset))
    if source is not None:
        result.update(source.result_entries())
    return model, result, source


def run_method(method, dataset, config, seed=0, source=None, callbacks=()):
    """Trains `method` on `dataset` (validation carved if absent) and measures the test split.

    Returns `(trained_model, result)`: result holds the test figures and precision-recall
    curves, the best validation average mAP, the epochs run, the seconds taken and each stage's
    validation curve. A method that needs a source ("met", "kim") without a given `source`
    (a trained source model, a `TrainedSource` or an `OutOfFoldSource`) gets one from
    `make_source` first (with `config.source_folds` > 1: out-of-fold embeddings, whose fold
    histories go to result["source_folds"]). `callbacks` are added to every stage's `fit`
    (after the validation evaluation, so they see its logs).
    """
    return run_with_source(method, dataset, config, seed, source, callbacks)[:2]


def compare(methods_to_run, dataset, config, seeds, log=print, finished=(), on_result=None,
            progress=True):
    """Runs every method for seeds 0..seeds-1; returns the list of `run_method` results.

    Within a seed, the methods that need a source ("met", "kim") share the
    `config.source_method` model of that seed: the listed baseline when it comes first, else
    the source made for the first of them (with `config.source_folds` > 1: the seed's
    out-of-fold embeddings). `log` gets one line per run, its figures, followed with
    `progress` by a progress line (`format_progress`); `log=None`: silent.

    A run that raises `keras_cmr.failures.TrainingFailure` (diverged or collapsed) does not
    end the comparison: its result is {"method", "seed", "failure": the message}, and
    `summarize` leaves it out. `finished`: results of an earlier, interrupted comparison;
    their (method, seed) runs are not run again and come first in the returned list (a
    transfer method of such a seed then trains its own source). `on_result(results)` is
    called after every run with the results so far (e.g. to save them). Runs of the same
    computation share their compiled train and predict steps on JAX
    (`sharing_compiled_steps`; the numbers are those of separate runs).
    """
    known = methods.available()
    unknown = [name for name in methods_to_run if name not in known]
    if unknown or not methods_to_run:
        raise ValueError(f"unknown method(s) {unknown}; choose from {known}.")
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}.")
    results = list(finished)
    with sharing_compiled_steps():
        _run_all(methods_to_run, dataset, config, seeds, log, on_result, progress, results)
    return results


def _run_all(methods_to_run, dataset, config, seeds, log, on_result, progress, results):
    """`compare`'s loop: appends each run's result to `results`."""
    done = {(result["method"], result["seed"]) for result in results}
    total = seeds * len(methods_to_run)
    start, run_seconds = time.perf_counter(), []
    for seed in range(seeds):
        source = None
        for method in methods_to_run:
            if (method, seed) in done:
                continue
            run_start = time.perf_counter()
            try:
                model, result, used = run_with_source(method, dataset, config, seed=seed,
                                                      source=source)
            except TrainingFailure as failure:
                model, used = None, None
                result = {"method": method, "seed": seed, "failure": str(failure)}
            if used is not None:
                source = used
            elif (model is not None and method == config.source_method
                  and config.source_folds == 1):
                source = TrainedSource(model)
            results.append(result)
            run_seconds.append(time.perf_counter() - run_start)
            if on_result is not None:
                on_result(results)
            if log is not None:
                log(_run_line(result))
            if log is not None and progress:
                log(format_progress(len(results), total, method, seed,
                                    time.perf_counter() - start, run_seconds))


def _run_line(result):
    if "failure" in result:
        return f"seed {result['seed']} {result['method']:<20} FAILED: {result['failure']}"
    test = result["test"]
    return (f"seed {result['seed']} {result['method']:<20} test I2T {test['i2t_map']:.4f} "
            f"T2I {test['t2i_map']:.4f} avg {test['avg_map']:.4f} "
            f"({result['epochs']} epochs, {result['seconds']:.0f} s)")


# Live views of the registry under the names this module exported before it existed, so a
# method registered later appears in them too.
_REGISTRY_VIEWS = {
    "METHODS": lambda: tuple(methods.available()),
    "METHOD_DESCRIPTIONS": lambda: {name: methods.get(name).description
                                    for name in methods.available()},
    "TRANSFER_METHODS": lambda: tuple(name for name in methods.available()
                                      if methods.get(name).needs_source),
    "SOURCE_METHODS": lambda: tuple(methods.sources()),
}
_DEPRECATED = {
    "PAIR_LOSSES": lambda: methods.pair_wise.loss_classes(),
    "SOURCE_HEADS": lambda: dict(methods.class_wise.SOURCE_HEADS),
}


def __getattr__(name):
    if name in _REGISTRY_VIEWS:
        return _REGISTRY_VIEWS[name]()
    if name in _DEPRECATED:
        warnings.warn(f"keras_cmr.experiment.{name} is deprecated and will be removed in the "
                      "next release: each method's build function (keras_cmr.methods) now "
                      "chooses its loss or head.", DeprecationWarning, stacklevel=2)
        return _DEPRECATED[name]()
    raise AttributeError(f"module 'keras_cmr.experiment' has no attribute {name!r}")


__all__ = ["OutOfFoldSource", "SourceProvider", "TrainedSource", "TrainingConfig",
           "as_source", "build_model", "compare", "fit_selected", "format_progress",
           "format_table", "make_encoder", "make_source", "measure_test_split",
           "out_of_fold_source", "run_method", "run_with_source", "sharing_compiled_steps",
           "summarize"]
