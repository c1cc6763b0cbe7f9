"""`keras-cmr train`: train one method, save the `.keras` files and a JSON of the figures."""

import dataclasses
import os

from keras_cmr.cli.options import (DEFAULT_DATA, add_data_option, add_protocol_options,
                                   experiment_setting, training_config)


def add_parser(commands):
    from keras_cmr.experiment import METHODS

    parser = commands.add_parser("train", help="train a method and print its test figures")
    parser.add_argument("--method", default="met", choices=METHODS,
                        help="method to train (default %(default)s: source, then transfer)")
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
    from keras_cmr.experiment import (TRANSFER_METHODS, format_table, measure_test_split,
                                      out_of_fold_source, run_method, summarize)

    config = training_config(args)
    data = experiment_setting(args, "data", DEFAULT_DATA)
    dataset = load_dataset(data)
    output = args.output.format(method=args.method, seed=args.seed)
    fold_sources = None
    if args.method in TRANSFER_METHODS and config.source_folds > 1:
        fold_sources = out_of_fold_source(
            dataset.with_validation(config.validation_fraction, seed=args.seed), config,
            seed=args.seed)
    model, result = run_method(args.method, dataset, config, seed=args.seed,
                               source=fold_sources)
    results = [result]
    saved = ["model.keras", "encoder.keras (serving)", "figures.json"]
    if fold_sources is not None:
        for fold, encoder in enumerate(fold_sources.encoders):
            saving.save_model(encoder, os.path.join(output, f"source_fold{fold}_encoder.keras"))
        saved.insert(2, f"source_fold{{0..{len(fold_sources.encoders) - 1}}}_encoder.keras")
    elif args.method in TRANSFER_METHODS:
        source = model.source
        results.insert(0, {**result, "method": "source (stage 1)",
                           "test": measure_test_split(source, dataset.test),
                           "best_val_avg_map": result["history"]["source"]["best_val_avg_map"]})
        saving.save_model(source, os.path.join(output, "source_encoder.keras"))
    saving.save_model(model, os.path.join(output, "model.keras"))
    saving.save_model(model.encoder, os.path.join(output, "encoder.keras"))
    saving.write_json({"data": data, "config": dataclasses.asdict(config),
                       "results": results},
                      os.path.join(output, "figures.json"))
    print(f"\n{dataset.name}: test mAP@all (selected on validation avg mAP)")
    print(format_table(summarize(results)))
    print(f"\nsaved in {output}: {', '.join(saved)}")
