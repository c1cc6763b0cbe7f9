"""Options shared by the subcommands: data, protocol, an experiment file, output."""

import dataclasses
import json

from keras_cmr import methods
from keras_cmr.config import TrainingConfig
from keras_cmr.config import default as config_default

DATA_HELP = ("data set: 'digits' (default, no download: scikit-learn's 8x8 digits as two "
             "half-image views, a stand-in, not image-text data), 'wikipedia:PATH' (the "
             "original release folder or the converted .npz) or 'npz:PATH'")
DEFAULT_DATA = "digits"
# Command-line options that set a TrainingConfig field of the same name.
PROTOCOL_OPTIONS = ("epochs", "batch_size", "learning_rate", "patience", "embedding_dim")


def methods_epilog():
    """The registered methods with their descriptions, for a command's help."""
    width = max(len(name) for name in methods.available())
    return "methods:\n" + "\n".join(f"  {name:<{width}}  {methods.get(name).description}"
                                     for name in methods.available())


def add_data_option(parser):
    parser.add_argument("--data", help=DATA_HELP)


def add_protocol_options(parser):
    parser.add_argument("--epochs", type=int,
                        help="most epochs per stage; early stopping on validation avg mAP "
                             f"may stop sooner (default {config_default('epochs')})")
    types = {field.name: field.type for field in dataclasses.fields(TrainingConfig)}
    for option in PROTOCOL_OPTIONS[1:]:
        parser.add_argument(f"--{option.replace('_', '-')}", type=types[option],
                            help=f"default {config_default(option)}")
    parser.add_argument("--config",
                        help="JSON experiment file: TrainingConfig fields (e.g. hidden_dims, "
                             "source_method, soft_contrastive) and optionally data, methods, "
                             "seeds; options given on the command line override it")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def read_json_object(path, label):
    """The JSON object in `path`; errors name the file as `label` does ("no such file" etc.)."""
    try:
        with open(path) as stream:
            content = json.load(stream)
    except FileNotFoundError:
        raise ValueError(f"{label}: no such file {path!r}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{label} {path}: not valid JSON ({error})") from None
    if not isinstance(content, dict):
        raise ValueError(f"{label} {path}: expected a JSON object, got "
                         f"{type(content).__name__}")
    return content


def read_experiment_file(path):
    """The JSON object of an experiment file ({} without one), with a clear error for a bad one."""
    return read_json_object(path, "--config") if path else {}


def experiment_setting(args, key, default):
    """The command line's value of `key`, else the experiment file's, else `default`."""
    value = getattr(args, key, None)
    if value is None:
        value = read_experiment_file(getattr(args, "config", None)).get(key, default)
    return value


def training_config(args):
    """A TrainingConfig: defaults, then the `--config` file's fields, then explicit options."""
    options = {option: getattr(args, option) for option in PROTOCOL_OPTIONS
               if getattr(args, option) is not None}
    experiment = read_experiment_file(args.config)
    if args.quiet:
        options["verbose"] = 0
    return TrainingConfig.from_experiment(experiment, f"--config {args.config}", **options)
