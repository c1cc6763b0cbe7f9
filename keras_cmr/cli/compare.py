"""`keras-cmr compare`: train each method the same way over seeds; print the test table.

A run that fails (diverged or collapsed: `keras_cmr.failures.TrainingFailure`) is recorded in
the table's JSON as {"method", "seed", "failure"} (a `keras_cmr.results.RunFailure`) and the
other runs go on; the command then exits with status 3 (keras_cmr.cli.main.TRAINING_FAILED).
With --json the file is rewritten (atomically) after every run, each run as its
`to_dict()`, so `--resume` can skip the runs it holds (read back by `result_from_dict`); an
existing --json file is refused before any work unless `--resume` continues it or
`--overwrite` replaces it (from the first finished run on).
"""

import argparse
import json
import os

from keras_cmr.cli.options import (DEFAULT_DATA, add_data_option, add_protocol_options,
                                   check_output_file, experiment_setting, methods_epilog,
                                   training_config)

DEFAULT_METHODS = "source,contrastive,naive_sum,met"
DEFAULT_SEEDS = 3


def add_parser(commands):
    parser = commands.add_parser(
        "compare", help="train several methods under one protocol and tabulate test mAP",
        epilog=methods_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_option(parser)
    parser.add_argument("--methods",
                        help=f"comma-separated methods, of those listed below (default "
                             f"{DEFAULT_METHODS})")
    parser.add_argument("--seeds", type=int, help=f"seeds 0..N-1 (default {DEFAULT_SEEDS})")
    add_protocol_options(parser)
    parser.add_argument("--json", help="write every run's figures, curves and the table here "
                                       "(rewritten after every run)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true",
                          help="skip the runs already finished in the --json file (of an "
                               "interrupted compare with the same settings); failed runs are "
                               "run again")
    existing.add_argument("--overwrite", action="store_true",
                          help="replace an existing --json file (without it, or --resume, the "
                               "command refuses before any work)")
    parser.set_defaults(run=run, check=check_results_file)


def run(args):
    import dataclasses

    from keras_cmr import saving
    from keras_cmr.cli.main import TRAINING_FAILED
    from keras_cmr.datasets import load_dataset
    from keras_cmr.experiment import compare, format_table, summarize

    methods = experiment_setting(args, "methods", DEFAULT_METHODS)
    if isinstance(methods, str):
        methods = [name.strip() for name in methods.split(",") if name.strip()]
    seeds = experiment_setting(args, "seeds", DEFAULT_SEEDS)
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}.")
    data = experiment_setting(args, "data", DEFAULT_DATA)
    config = training_config(args)
    settings = {"data": data, "methods": methods, "seeds": seeds,
                "config": dataclasses.asdict(config)}
    finished = finished_runs(args, settings)
    dataset = load_dataset(data)

    def save(results):
        if args.json:
            saving.write_json({**settings, "dataset": dataset.name,
                               "table": summarize(results),
                               "paired": paired_statistics(results, methods),
                               "runs": [result.to_dict() for result in results]}, args.json)

    results = compare(methods, dataset, config, seeds, finished=finished, on_result=save,
                      log=lambda line: print(line, flush=True), progress=not args.quiet)
    save(results)
    print(f"\n{dataset.name}: test mAP@all, mean +- std over {seeds} seed(s), "
          "each selected on validation avg mAP")
    print(format_table(summarize(results)))
    failed = [result for result in results if result.failed]
    for result in failed:
        print(f"failed: {result.method} seed {result.seed}: {result.failure}")
    return TRAINING_FAILED if failed else 0


def paired_statistics(results, methods):
    """Each listed method that transfers from a source, minus every other method: the paired
    per-seed differences of test avg mAP with 95% intervals (`keras_cmr.statistics`)."""
    from keras_cmr import methods as registry
    from keras_cmr.statistics import paired_comparisons

    present = {result.method for result in results if not result.failed}
    return {method: paired_comparisons(results, reference=method) for method in methods
            if method in present and registry.get(method).needs_source}


def check_results_file(args):
    """Refuses, before any work, a --json file that exists when neither --resume nor
    --overwrite says what to do with it, and a path that cannot be one."""
    if not args.json:
        if args.resume or args.overwrite:
            option = "--resume" if args.resume else "--overwrite"
            raise ValueError(f"{option} needs --json: the file of the comparison.")
        return
    if os.path.isfile(args.json) and not (args.resume or args.overwrite):
        raise ValueError(f"--json {args.json!r} exists: continue that comparison with --resume "
                         "(same settings), replace it with --overwrite, or give another --json")
    check_output_file(args.json, "--json", overwrite=True)


def finished_runs(args, settings):
    """The successful runs (`RunResult`s) of the --json file to skip with --resume (none
    without it)."""
    if not args.resume:
        return []
    if not os.path.exists(args.json):
        return []  # nothing finished yet: start from the beginning
    from keras_cmr.results import result_from_dict
    from keras_cmr.utils.files import read_json_object

    earlier = read_json_object(args.json, "--json")
    settings = json.loads(json.dumps(settings))  # tuples as the file holds them: lists
    changed = [key for key in settings if earlier.get(key) != settings[key]]
    if changed:
        raise ValueError(f"--resume: {args.json} was written with other settings "
                         f"({', '.join(changed)}); resume with the same ones or another "
                         "--json file.")
    try:
        runs = [result_from_dict(run) for run in earlier.get("runs", [])]
    except ValueError as error:
        raise ValueError(f"--resume: {args.json}: {error}") from None
    return [run for run in runs if not run.failed]
