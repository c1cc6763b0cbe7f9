"""Options shared by the subcommands: data, protocol, output."""

import json

DATA_HELP = ("data set: 'digits' (default, no download: scikit-learn's 8x8 digits as two "
             "half-image views, a stand-in, not image-text data), 'wikipedia:PATH' (the "
             "original release folder or the converted .npz) or 'npz:PATH'")


def add_data_option(parser):
    parser.add_argument("--data", default="digits", help=DATA_HELP)


def add_protocol_options(parser):
    from keras_cmr.experiment import TrainingConfig

    defaults = TrainingConfig()
    parser.add_argument("--epochs", type=int, default=defaults.epochs,
                        help="most epochs per stage; early stopping on validation avg mAP "
                             "may stop sooner (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--patience", type=int, default=defaults.patience)
    parser.add_argument("--embedding-dim", type=int, default=defaults.embedding_dim)
    parser.add_argument("--config", help="JSON file of TrainingConfig fields (the command-line "
                                         "options above override nothing in it)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def training_config(args):
    """A TrainingConfig from `--config` (when given) or the individual options."""
    from keras_cmr.experiment import TrainingConfig

    if args.config:
        with open(args.config) as stream:
            fields = json.load(stream)
        fields.pop("methods", None)
        fields.pop("seeds", None)
        fields.setdefault("verbose", 0 if args.quiet else 1)
        try:
            return TrainingConfig(**fields)
        except TypeError as error:
            raise ValueError(f"{args.config}: {error}") from error
    return TrainingConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        patience=args.patience, embedding_dim=args.embedding_dim,
        verbose=0 if args.quiet else 1,
    )
