"""`keras-cmr compare`: train each method the same way over seeds; print the test table."""

import argparse

from keras_cmr.cli.options import (DEFAULT_DATA, add_data_option, add_protocol_options,
                                   experiment_setting, methods_epilog, training_config)

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
    parser.add_argument("--json", help="write every run's figures, curves and the table here")
    parser.set_defaults(run=run)


def run(args):
    import dataclasses

    from keras_cmr import saving
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
    dataset = load_dataset(data)
    results = compare(methods, dataset, config, seeds, log=lambda line: print(line, flush=True))
    table = summarize(results)
    print(f"\n{dataset.name}: test mAP@all, mean +- std over {seeds} seed(s), "
          "each selected on validation avg mAP")
    print(format_table(table))
    if args.json:
        saving.write_json({"data": data, "methods": methods, "seeds": seeds,
                           "config": dataclasses.asdict(config), "table": table,
                           "runs": results}, args.json)
