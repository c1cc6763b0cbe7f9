"""Options shared by the subcommands: data, protocol, an experiment file, output."""

import dataclasses
import os

from keras_cmr import methods
from keras_cmr.config import TrainingConfig
from keras_cmr.config import default as config_default
from keras_cmr.options import NOISE_KINDS

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


def add_overwrite_option(parser, result):
    """`--overwrite`: without it, a command refuses to replace `result` (e.g. "a finished
    run") that its output already holds."""
    parser.add_argument("--overwrite", action="store_true",
                        help=f"replace {result} that the output already holds (without it the "
                             "command refuses, before any work)")


def check_output_file(path, option, overwrite):
    """Before any work: refuses an output file that names a folder or lies under a file, and
    an existing one unless `overwrite`."""
    _check_under_a_folder(path, option)
    if os.path.isdir(path):
        raise ValueError(f"{option} {path!r} is a folder; give a file name")
    if os.path.exists(path) and not overwrite:
        raise ValueError(f"{option} {path!r} exists: pass --overwrite to replace it, or give "
                         f"another {option}")


def check_output_folder(path, option, overwrite, results=None):
    """Before any work: refuses an output folder that is a file or lies under one, and, unless
    `overwrite`, one that holds a result: any of the files `results`, or (None) anything."""
    _check_under_a_folder(path, option)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{option} {path!r} is a file, not a folder")
    if overwrite or not os.path.isdir(path):
        return
    if results is None:
        present = sorted(os.listdir(path))
    else:
        present = [name for name in results if os.path.exists(os.path.join(path, name))]
    if present:
        shown = ", ".join(present[:3]) + (", ..." if len(present) > 3 else "")
        raise ValueError(f"{option} {path!r} already holds {shown}: pass --overwrite to "
                         f"replace it, or give another {option}")


def _check_under_a_folder(path, option):
    """Refuses a `path` whose nearest existing parent is a file (it can be neither made nor
    written)."""
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"{option} {path!r} lies under {parent!r}, which is a file")


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
    parser.add_argument("--label-noise", type=float, metavar="RATE",
                        help="fraction of the training pairs whose label is changed, seeded "
                             "by the run's seed (keras_cmr.datasets.noise); default none")
    parser.add_argument("--label-noise-kind", choices=NOISE_KINDS,
                        help="with --label-noise: 'symmetric' (default; uniform over the "
                             "other classes) or 'asymmetric' (class c -> c + 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def read_experiment_file(path):
    """The JSON object of an experiment file ({} without one), with a clear error for a bad one."""
    if not path:
        return {}
    from keras_cmr.utils.files import read_json_object

    return read_json_object(path, "--config")


def label_noise_option(args, experiment):
    """The `label_noise` field set by `--label-noise` / `--label-noise-kind` (None: not given).

    `--label-noise-kind` alone changes the kind of the experiment file's `label_noise`.
    """
    rate, kind = getattr(args, "label_noise", None), getattr(args, "label_noise_kind", None)
    if rate is None and kind is None:
        return None
    noise = dict(experiment.get("label_noise") or {})
    if rate is None and "rate" not in noise:
        raise ValueError("--label-noise-kind needs a rate: give --label-noise RATE (or a "
                         "label_noise entry in the --config file)")
    if rate is not None:
        noise["rate"] = rate
    if kind is not None:
        noise["kind"] = kind
    return noise


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
    noise = label_noise_option(args, experiment)
    if noise is not None:
        options["label_noise"] = noise
    if args.quiet:
        options["verbose"] = 0
    return TrainingConfig.from_experiment(experiment, f"--config {args.config}", **options)
