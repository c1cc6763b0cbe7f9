"""Where `keras-cmr compare` spends its wall time: training steps, validation, tracing, test.

Run from the repository root:

    python benchmarks/compare_time.py [--config experiments/wikipedia.json]
                                      [--methods contrastive,met] [--epochs 10] [--seeds 1]
                                      [--data digits] [--verbose 0] [--json PATH]

Runs `keras_cmr.experiment.compare` (what `keras-cmr compare` calls) under the JAX backend
unless KERAS_BACKEND says otherwise. With --config, on the experiment file's data, methods and
protocol (a relative data path is read from the working directory, as the CLI does); without,
on the download-free digits set with `TrainingConfig(epochs=10)` and the library's other
defaults. --data, --methods and --epochs replace the file's; --seeds is 1 unless given. It
splits the wall time:

  training steps     on_train_batch_begin -> on_train_batch_end of every batch, less the
                     tracing excess below. A callback with batch hooks makes Keras read each
                     batch's logs, so every step ends at a device sync (Keras' own loop runs
                     ahead when no callback has batch hooks: this row is an upper bound).
  first-step tracing the excess of each fit's first batch over that fit's median batch time
                     (tracing and compiling the train step).
  partial-batch retrace  the same excess of the first epoch's last batch when the training
                     split is not a multiple of the batch size: `fit_selected` passes arrays,
                     so the last batch is smaller, a new shape, traced and compiled again.
  validation         `RetrievalEvaluation.on_epoch_end`: embedding the validation split and
                     its mAP@all, every epoch (includes tracing `predict` on its first call).
  model building     `keras_cmr.experiment.protocol.build_model`.
  compile + fit setup  `fit_selected` outside `fit`'s on_train_begin .. on_train_end: compile,
                     the callbacks' construction, fit's data adapter and first-call setup.
  fit loop, other    the rest of on_train_begin .. on_train_end: epoch hooks, batching,
                     early stopping's weight restore.
  test evaluation    `keras_cmr.experiment.run.measure_test_split` (embed the test split, mAP@all,
                     precision-recall curves).
  seeding            `keras.utils.set_random_seed` (each method's run): its first call imports
                     TensorFlow when it is installed (Keras seeds tf.random too), on any backend.
  rest               everything else: validation carving, logging.

It times by wrapping `build_model`, `fit_selected` and `RetrievalEvaluation` in
`keras_cmr.experiment.protocol` (the out-of-fold sources train through them too),
`measure_test_split` in `keras_cmr.experiment.run` and `keras.utils.set_random_seed` for the run
(instrumentation only: the calls, arguments and results are unchanged). The machine it was
written on is shared, so the shares are what to read, not the seconds.
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from keras_cmr import experiment  # noqa: E402
from keras_cmr.experiment import protocol, run  # noqa: E402
from keras_cmr.datasets import load_dataset  # noqa: E402

ROWS = ("training steps", "first-step tracing", "partial-batch retrace", "validation",
        "model building",
        "compile + fit setup", "fit loop, other", "test evaluation", "seeding", "rest")


class Clock:
    """Seconds per part of the run, summed over every stage of every method."""

    def __init__(self):
        self.seconds = dict.fromkeys(ROWS, 0.0)
        self.fits = []  # per fit: batch times of each epoch, fit seconds

    def add(self, row, seconds):
        self.seconds[row] += seconds


class BatchTimer(keras.callbacks.Callback):
    """Times each training batch and the whole fit (on_train_begin .. on_train_end)."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock
        self.epochs = []

    def on_train_begin(self, logs=None):
        self.fit_start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append([])

    def on_train_batch_begin(self, batch, logs=None):
        self.batch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.epochs[-1].append(time.perf_counter() - self.batch_start)

    def on_train_end(self, logs=None):
        fit_seconds = time.perf_counter() - self.fit_start
        self.clock.fits.append({"epochs": self.epochs, "fit_s": fit_seconds})


def split_fit(fit, partial_last):
    """(first-step excess, partial-batch excess, all batches) seconds of one fit."""
    batches = [t for epoch in fit["epochs"] for t in epoch]
    median = statistics.median(batches)
    first = fit["epochs"][0]
    first_step = max(0.0, first[0] - median)
    retrace = max(0.0, first[-1] - median) if partial_last and len(first) > 1 else 0.0
    return first_step, retrace, sum(batches)


def instrument(clock):
    """Wraps keras_cmr.experiment's stage functions to time them; returns an undo function."""
    saved = {name: getattr(protocol, name) for name in
             ("build_model", "fit_selected", "RetrievalEvaluation")}
    saved_measure = run.measure_test_split
    validation_seconds = [0.0]

    def timed(row, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                clock.add(row, time.perf_counter() - start)
        return wrapper

    class TimedRetrievalEvaluation(saved["RetrievalEvaluation"]):
        def on_epoch_end(self, epoch, logs=None):
            start = time.perf_counter()
            super().on_epoch_end(epoch, logs)
            validation_seconds[0] += time.perf_counter() - start

    def fit_selected(model, dataset, config, callbacks=(), source=None, check_collapse=True,
                     **options):
        start = time.perf_counter()
        validation_before = validation_seconds[0]
        result = saved["fit_selected"](model, dataset, config,
                                       (*callbacks, BatchTimer(clock)), source,
                                       check_collapse, **options)
        fit = clock.fits[-1]
        partial_last = dataset.train.num_pairs % config.batch_size != 0
        first_step, retrace, batches = split_fit(fit, partial_last)
        validation = validation_seconds[0] - validation_before
        clock.add("training steps", batches - first_step - retrace)
        clock.add("first-step tracing", first_step)
        clock.add("partial-batch retrace", retrace)
        clock.add("validation", validation)
        clock.add("fit loop, other", fit["fit_s"] - batches - validation)
        clock.add("compile + fit setup", time.perf_counter() - start - fit["fit_s"])
        return result

    protocol.build_model = timed("model building", saved["build_model"])
    run.measure_test_split = timed("test evaluation", saved_measure)
    protocol.fit_selected = fit_selected
    protocol.RetrievalEvaluation = TimedRetrievalEvaluation
    set_random_seed = keras.utils.set_random_seed
    keras.utils.set_random_seed = timed("seeding", set_random_seed)

    def undo():
        for name, value in saved.items():
            setattr(protocol, name, value)
        run.measure_test_split = saved_measure
        keras.utils.set_random_seed = set_random_seed
    return undo


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None,
                    help="an experiment file (keras-cmr compare --config): its data, methods "
                         "and protocol fields; --data, --methods, --epochs, --seeds replace "
                         "them when given")
    ap.add_argument("--data", default=None, help="a keras_cmr.datasets.load_dataset spec "
                                                 "(default: the file's, else digits)")
    ap.add_argument("--methods", default=None, help="default: the file's, else contrastive,met")
    ap.add_argument("--epochs", type=int, default=None,
                    help="most epochs per stage (default: the file's, else 10)")
    ap.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 (default 1, not the "
                                                         "file's)")
    ap.add_argument("--verbose", type=int, default=0, help="fit's verbose (the CLI's is 1)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    setting = {}
    if args.config:
        with open(args.config) as f:
            setting = json.load(f)  # a relative data path is read as the CLI does: from cwd
    methods = args.methods.split(",") if args.methods else setting.get(
        "methods", ["contrastive", "met"])
    methods = [m for m in methods if m]
    overrides = {"verbose": args.verbose}
    if args.epochs is not None or not args.config:
        overrides["epochs"] = args.epochs or 10
    config = experiment.TrainingConfig.from_experiment(setting, args.config, **overrides)
    dataset = load_dataset(args.data or setting.get("data", "digits"))
    load_at_start = os.getloadavg()[0]
    clock = Clock()
    undo = instrument(clock)
    start = time.perf_counter()
    try:
        results = experiment.compare(methods, dataset, config, args.seeds)
    finally:
        undo()
    total = time.perf_counter() - start
    clock.add("rest", total - sum(clock.seconds.values()))
    batches = sum(len(e) for fit in clock.fits for e in fit["epochs"])
    epochs = sum(len(fit["epochs"]) for fit in clock.fits)
    print(f"load average (1 min) at start: {load_at_start:.1f}")
    print(f"backend {keras.backend.backend()}, data {dataset.name}, methods {methods}, "
          f"seeds {args.seeds}, epoch cap {config.epochs}, batch {config.batch_size}: "
          f"{len(clock.fits)} fits, {epochs} epochs, {batches} batches")
    print(f"{'part':<22} | {'seconds':>8} | {'share':>6}")
    print("-" * 42)
    for row in ROWS:
        print(f"{row:<22} | {clock.seconds[row]:>8.2f} | {100 * clock.seconds[row] / total:>5.1f}%")
    print(f"{'total (compare)':<22} | {total:>8.2f} | 100.0%")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"backend": keras.backend.backend(), "methods": methods,
                       "seeds": args.seeds, "epochs": args.epochs, "total_s": total,
                       "seconds": clock.seconds, "fits": clock.fits,
                       "results": [{"method": r.method, "seed": r.seed, "epochs": r.epochs,
                                    "seconds": r.seconds} for r in results]}, f, indent=2)


if __name__ == "__main__":
    main()
