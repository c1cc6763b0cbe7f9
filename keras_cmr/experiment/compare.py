"""`compare`: every method for every seed under the protocol, with the progress of the whole."""

import time

from keras_cmr import methods
from keras_cmr.experiment.compiled import CompiledSteps
from keras_cmr.experiment.run import Run
from keras_cmr.experiment.sources import TrainedSource
from keras_cmr.experiment.tables import format_progress
from keras_cmr.failures import TrainingFailure
from keras_cmr.options import SourceSetting
from keras_cmr.results import RunFailure


def compare(methods_to_run, dataset, config, seeds, log=print, finished=(), on_result=None,
            progress=True):
    """Runs every method for seeds 0..seeds-1; returns the list of their `RunResult`s and
    `RunFailure`s (`keras_cmr.results`).

    A (method, seed) run gives the figures it gives alone: every stage starts from the seed
    (`train_selected`), and within a seed the methods that need a source ("met", "kim") share
    the source that each would train alone: the `config.source_method` model when that
    method is listed and runs first and is the only source setting, else the one made for the
    first of them (`Run.source`). `log` gets one line per run, its figures, followed with
    `progress` by a progress line (`format_progress`); `log=None`: silent.

    A run that raises `keras_cmr.failures.TrainingFailure` (diverged or collapsed) does not
    end the comparison: its result is a `RunFailure`, and `summarize` leaves it out.
    `finished`: results of an earlier, interrupted comparison;
    their (method, seed) runs are not run again and come first in the returned list.
    `on_result(results)` is called after every run with the results so far (e.g. to save
    them). Runs of the same computation share their compiled train and predict steps on JAX
    (`CompiledSteps`; the numbers are those of separate runs).
    """
    known = methods.available()
    unknown = [name for name in methods_to_run if name not in known]
    if unknown or not methods_to_run:
        raise ValueError(f"unknown method(s) {unknown}; choose from {known}.")
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}.")
    results = list(finished)
    done = {(result.method, result.seed) for result in results}
    steps = CompiledSteps()
    total = seeds * len(methods_to_run)
    start, run_seconds = time.perf_counter(), []
    for seed in range(seeds):
        to_run = [method for method in methods_to_run if (method, seed) not in done]
        run = Run(dataset, config, seed, steps=steps) if to_run else None
        for method in to_run:
            run_start = time.perf_counter()
            result = _run_one(run, method)
            results.append(result)
            run_seconds.append(time.perf_counter() - run_start)
            if on_result is not None:
                on_result(results)
            if log is not None:
                log(_run_line(result))
            if log is not None and progress:
                log(format_progress(len(results), total, method, seed,
                                    time.perf_counter() - start, run_seconds))
    return results


def _run_one(run, method):
    """The result of `method` in `run`; a trained model of the run's only source setting
    becomes its source when it has none yet."""
    try:
        model, result, _ = run.method(method)
    except TrainingFailure as failure:
        return RunFailure(method, run.seed, str(failure))
    config = run.config
    if config.source_settings() == (SourceSetting(method),) and not run.has_source():
        run.use_source(TrainedSource(model))
    return result


def _run_line(result):
    if result.failed:
        return f"seed {result.seed} {result.method:<20} FAILED: {result.failure}"
    test = result.test
    chosen = "".join(f"; {what} {choice['chosen']} chosen"
                     for what, choice in result.choices().items())
    return (f"seed {result.seed} {result.method:<20} test I2T {test['i2t_map']:.4f} "
            f"T2I {test['t2i_map']:.4f} avg {test['avg_map']:.4f} "
            f"({result.epochs} epochs, {result.seconds:.0f} s{chosen})")
