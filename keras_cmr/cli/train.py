"""`keras-cmr train`: train one method, save the `.keras` files and a JSON of the figures."""

import argparse
import dataclasses
import os

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
    parser.set_defaults(run=run)


def run(args):
    from keras_cmr import saving
    from keras_cmr.datasets import load_dataset
    from keras_cmr.experiment import (format_table, measure_test_split, run_with_source,
                                      summarize)

    config = training_config(args)
    data = experiment_setting(args, "data", DEFAULT_DATA)
    dataset = load_dataset(data)
    output = args.output.format(method=args.method, seed=args.seed)
    model, result, source = run_with_source(args.method, dataset, config, seed=args.seed)
    results = [result]
    saved = ["model.keras", "encoder.keras (serving)", "figures.json"]
    if source is not None:
        saved.insert(2, source.save_encoders(output))
    if source is not None and source.history is not None:
        # One source model trained for this run: its own row, on the same test split.
        results.insert(0, {**result, "method": "source (stage 1)",
                           "test": measure_test_split(source.encoder, dataset.test),
                           "best_val_avg_map": source.history["best_val_avg_map"]})
    saving.save_model(model, os.path.join(output, "model.keras"))
    saving.save_model(model.encoder, os.path.join(output, "encoder.keras"))
    saving.write_json({"data": data, "config": dataclasses.asdict(config),
                       "results": results},
                      os.path.join(output, "figures.json"))
    print(f"\n{dataset.name}: test mAP@all (selected on validation avg mAP)")
    print(format_table(summarize(results)))
    print(f"\nsaved in {output}: {', '.join(saved)}")
