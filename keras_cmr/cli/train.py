"""`keras-cmr train`: train one method, save the `.keras` files and a JSON of the figures.

Every epoch is backed up in OUTPUT/backup (`keras_cmr.experiment.SeededEpochs`), so
`keras-cmr train --resume` with the same options continues a killed run to the result of an
uninterrupted one; the backup is removed when the run has finished.
"""

import argparse
import dataclasses
import os
import shutil
import time

from keras_cmr import methods
from keras_cmr.cli.options import (DEFAULT_DATA, add_data_option, add_protocol_options,
                                   experiment_setting, methods_epilog, training_config)

DEFAULT_METHOD = "met"


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
    parser.set_defaults(run=run)


def run(args):
    from keras_cmr import distribution
    from keras_cmr.datasets import load_dataset
    from keras_cmr.experiment import (SeededEpochs, format_table, measure_test_split,
                                      run_with_source, summarize)
    from keras_cmr.failures import TrainingFailure

    start = time.perf_counter()
    config = training_config(args)
    data = experiment_setting(args, "data", DEFAULT_DATA)
    output = args.output.format(method=args.method, seed=args.seed)
    backup = os.path.join(output, "backup")
    if os.path.isdir(backup) and not args.resume:
        raise ValueError(f"{backup} holds the backup of an interrupted run: continue it with "
                         "--resume (same options), or remove the folder to start over.")
    dataset = load_dataset(data)
    # Backups are per process: a multi-process run is not backed up (its processes would
    # write one folder).
    resumable = distribution.process_count() == 1
    if args.resume and not resumable:
        raise ValueError("--resume works in a one-process run only.")
    # Several processes feed their shares of the one-process run's batches: the same training.
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
        results.insert(0, {**result, "method": "source (stage 1)",
                           "test": measure_test_split(source.encoder, dataset.test),
                           "best_val_avg_map": source.history["best_val_avg_map"]})
    print(f"\n{dataset.name}: test mAP@all (selected on validation avg mAP)")
    print(format_table(summarize(results)))
    # The weights are the same in every process of a multi-process run: one writes them.
    if distribution.is_chief():
        saved = save_run(output, model, source, {"data": data,
                                                 "config": dataclasses.asdict(config),
                                                 "results": results})
        print(f"\nsaved in {output}{os.sep}: {', '.join(saved)}")
    shutil.rmtree(backup, ignore_errors=True)
    print(f"took {time.perf_counter() - start:.0f} s (training and test measurement)")


def save_run(output, model, source, figures):
    """Writes model.keras, encoder.keras, the source's encoders if any, and figures.json;
    returns what was written, for the summary line."""
    from keras_cmr import saving

    saved = ["model.keras", "encoder.keras (serving)", "figures.json"]
    if source is not None:
        saved.insert(2, source.save_encoders(output))
    saving.save_model(model, os.path.join(output, "model.keras"))
    saving.save_model(model.encoder, os.path.join(output, "encoder.keras"))
    saving.write_json(figures, os.path.join(output, "figures.json"))
    return saved
