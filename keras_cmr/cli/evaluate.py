"""`keras-cmr evaluate`: a saved `.keras` model's retrieval figures on a data split."""

from keras_cmr.cli.options import (DEFAULT_DATA, add_data_option, add_overwrite_option,
                                   check_output_file)


def add_parser(commands):
    parser = commands.add_parser("evaluate", help="evaluate a saved .keras model")
    parser.add_argument("model", help="a .keras file saved by keras-cmr (model or encoder)")
    add_data_option(parser)
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--top-k", type=int, default=None, help="mAP@k instead of mAP@all")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    add_overwrite_option(parser, "the --json file")
    parser.set_defaults(run=run, check=check)


def check(args):
    """The --json file, before any work."""
    if args.json:
        check_output_file(args.json, "--json", args.overwrite)


def run(args):
    from keras_cmr import saving
    from keras_cmr.datasets import load_dataset
    from keras_cmr.evaluation import evaluate_retrieval

    model = saving.load_model(args.model)
    dataset = load_dataset(args.data or DEFAULT_DATA)
    if args.split == "val":
        dataset = dataset.with_validation()
    split = dataset.splits[args.split]
    figures = evaluate_retrieval(model.encode_image(split.image), model.encode_text(split.text),
                                 split.labels, top_k=args.top_k,
                                 metrics=("map", "map@r", "r_precision", "precision", "recall"))
    print(f"{args.model} on {dataset.name} {args.split} ({split.num_pairs} pairs)")
    for key, value in figures.items():
        print(f"  {key:<20} {value:.4f}")
    if args.json:
        saving.write_json(figures, args.json)
