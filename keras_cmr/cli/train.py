"""`keras-cmr train`: train one method, save the `.keras` files and a JSON of the figures.

Every epoch is backed up in OUTPUT/backup (`keras_cmr.experiment.SeededEpochs`), so
`keras-cmr train --resume` with the same options continues a killed run to the result of an
uninterrupted one; the backup is removed when the run has finished.

An OUTPUT that holds a finished run (`FINISHED_RUN_FILES`) is refused before any work unless
`--overwrite`; the new run then replaces it only once its own files are all written.
"""

import argparse
import dataclasses
import os
import shutil
import tempfile
import time

from keras_cmr import methods
from keras_cmr.cli.options import (DEFAULT_DATA, add_data_option, add_overwrite_option,
                                   add_protocol_options, check_output_folder,
                                   experiment_setting, methods_epilog, training_config)

DEFAULT_METHOD = "met"
# Either file marks a folder that holds a finished run.
FINISHED_RUN_FILES = ("figures.json", "model.keras")


def add_parser(commands):
    parser = commands.add_parser("train", help="train a method and print its test figures",
                                 epilog=methods_epilog(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default=DEFAULT_METHOD, choices=methods.available(),
                        metavar="METHOD",
                        help="method to train, one of those listed below (default "
                             "%(default)s: source, then transfer)")
    add_data_option(parser)
    add_protocol_options(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=os.path.join("runs", "{method}-seed{seed}"),
                        help="folder for model.keras, encoder.keras and figures.json "
                             "(default %(default)s)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the killed run backed up in the output folder (same "
                             "options); without a backup, start afresh")
    add_overwrite_option(parser, "a finished run (or an interrupted run's backup)")
    parser.set_defaults(run=run, check=check)


def run(args):
    from keras_cmr import distribution
    from keras_cmr.datasets import load_dataset
    from keras_cmr.experiment import (SeededEpochs, format_table, measure_test_split,
                                      run_with_source, summarize)
    from keras_cmr.failures import TrainingFailure

    start = time.perf_counter()
    output = output_folder(args)
    backup = os.path.join(output, "backup")
    config = training_config(args)
    data = experiment_setting(args, "data", DEFAULT_DATA)
    dataset = load_dataset(data)
    # Backups are per process: a multi-process run is not backed up (its processes would
    # write one folder).
    resumable = distribution.process_count() == 1
    if args.resume and not resumable:
        raise ValueError("--resume works in a one-process run only.")
    # Several processes feed their shares of the one-process run's batches: the same training.
    if not args.resume:
        shutil.rmtree(backup, ignore_errors=True)  # an interrupted run that --overwrite drops
    plan = SeededEpochs(args.seed, backup=backup if resumable else None)
    try:
        model, result, source = run_with_source(args.method, dataset, config, seed=args.seed,
                                                plan=plan)
    except TrainingFailure:
        # Resuming a diverged or collapsed run would fail again: leave nothing behind.
        shutil.rmtree(backup, ignore_errors=True)
        raise
    results = [result]
    if source is not None and source.history is not None:
        # One source model trained for this run: its own row, on the same test split.
        results.insert(0, dataclasses.replace(
            result, method="source (stage 1)",
            test=measure_test_split(source.encoder, dataset.test),
            best_val_avg_map=source.history["best_val_avg_map"], method_choice=None))
    print(f"\n{dataset.name}: test mAP@all (selected on validation avg mAP)")
    print(format_table(summarize(results)))
    for what, choice in result.choices().items():
        candidates = ", ".join(f"{label} {figure:.4f}" for label, figure
                               in choice["best_val_avg_map"].items())
        print(f"{what} chosen on validation avg mAP: {choice['chosen']} ({candidates})")
    # The weights are the same in every process of a multi-process run: one writes them.
    if distribution.is_chief():
        figures = {"data": data, "config": dataclasses.asdict(config),
                   "results": [row.to_dict() for row in results]}
        saved = save_run(output, model, source, figures)
        print(f"\nsaved in {output}{os.sep}: {', '.join(saved)}")
    shutil.rmtree(backup, ignore_errors=True)
    print(f"took {time.perf_counter() - start:.0f} s (training and test measurement)")


def output_folder(args):
    """The run's folder: --output with the method and seed filled in."""
    return args.output.format(method=args.method, seed=args.seed)


def check(args):
    """Refuses, before any work, an output folder that is no folder, or that holds a finished
    run or an interrupted run's backup that the options do not say to replace or continue."""
    output = output_folder(args)
    backup = os.path.join(output, "backup")
    interrupted = os.path.isdir(backup)
    # A backup exists only if its run was free to replace the folder's finished run.
    check_output_folder(output, "--output", args.overwrite or (args.resume and interrupted),
                        FINISHED_RUN_FILES)
    if interrupted and not (args.resume or args.overwrite):
        raise ValueError(f"{backup} holds the backup of an interrupted run: continue it with "
                         "--resume (same options), or start over with --overwrite.")


def save_run(output, model, source, figures):
    """Writes model.keras, encoder.keras, the source's encoders if any, and figures.json into
    `output`; returns what was written, for the summary line.

    The files are written (atomically) into a temporary folder inside `output` first, then
    moved in, figures.json last; a finished run there is thus replaced only once the new one
    is complete, and its `.keras` files that the new run does not write are removed.
    """
    from keras_cmr import saving

    os.makedirs(output, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".tmp-", dir=output)
    try:
        saved = ["model.keras", "encoder.keras (serving)", "figures.json"]
        if source is not None:
            saved.insert(2, source.save_encoders(staging))
        saving.save_model(model, os.path.join(staging, "model.keras"))
        saving.save_model(model.encoder, os.path.join(staging, "encoder.keras"))
        saving.write_json(figures, os.path.join(staging, "figures.json"))
        written = sorted(os.listdir(staging), key=lambda name: name == "figures.json")
        # The old figures.json goes first and the new one comes last: in between, no
        # figures.json sits beside models that are not its own.
        old_figures = os.path.join(output, "figures.json")
        if os.path.exists(old_figures):
            os.remove(old_figures)
        for name in os.listdir(output):
            path = os.path.join(output, name)
            if name.endswith(".keras") and name not in written and os.path.isfile(path):
                os.remove(path)
        for name in written:
            os.replace(os.path.join(staging, name), os.path.join(output, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return saved
