"""`keras-cmr compare`: train each method the same way over seeds; print the test table."""

from keras_cmr.cli.options import add_data_option, add_protocol_options, training_config


def add_parser(commands):
    parser = commands.add_parser(
        "compare", help="train several methods under one protocol and tabulate test mAP")
    add_data_option(parser)
    parser.add_argument("--methods", default="source,contrastive,naive_sum,met",
                        help="comma-separated methods (default %(default)s)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    add_protocol_options(parser)
    parser.add_argument("--json", help="write every run's figures and the table here")
    parser.set_defaults(run=run)


def run(args):
    import dataclasses

    from keras_cmr import saving
    from keras_cmr.datasets import load_dataset
    from keras_cmr.experiment import METHODS, format_table, run_method, summarize

    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    unknown = [name for name in methods if name not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}.")
    if args.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {args.seeds}.")
    config = training_config(args)
    dataset = load_dataset(args.data)
    results = []
    for seed in range(args.seeds):
        # One source per seed: the "source" baseline is the model that met and kim transfer
        # from, as the method intends (trained once, reused).
        source = None
        for method in methods:
            model, result = run_method(method, dataset, config, seed=seed, source=source)
            if method == "source":
                source = model
            elif method in ("met", "kim") and source is None:
                source = model.source
            results.append(result)
            test = result["test"]
            print(f"seed {seed} {method:<20} test I2T {test['i2t_map']:.4f} "
                  f"T2I {test['t2i_map']:.4f} avg {test['avg_map']:.4f} "
                  f"({result['epochs']} epochs, {result['seconds']:.0f} s)", flush=True)
    table = summarize(results)
    print(f"\n{dataset.name}: test mAP@all, mean +- std over {args.seeds} seed(s), "
          "each selected on validation avg mAP")
    print(format_table(table))
    if args.json:
        saving.write_json({"data": args.data, "config": dataclasses.asdict(config),
                           "table": table, "runs": results}, args.json)
