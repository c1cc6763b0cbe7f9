"""The `keras-cmr` command: train, evaluate and compare cross-modal retrieval methods.

    keras-cmr train                       # MET on digits; writes runs/met-seed0/
    keras-cmr train --resume              # continues a killed run from runs/met-seed0/backup
    keras-cmr train --label-noise 0.4 --overwrite
                                          # replaces the finished run in runs/met-seed0/
    keras-cmr train --method contrastive --data wikipedia:../shared/data/wikipedia_sift_lda
                                          # writes runs/contrastive-seed0/
    keras-cmr evaluate runs/met-seed0/encoder.keras --data digits
    keras-cmr compare --data digits --methods source,contrastive,met --seeds 3 --json out.json
    keras-cmr compare --resume --json out.json --data digits --methods source,contrastive,met \\
        --seeds 3                         # skips the runs out.json holds
    keras-cmr compare --config experiments/wikipedia.json --json wikipedia.json
    keras-cmr plot wikipedia.json --out docs/figures/wikipedia --overwrite
                                          # redraws the two PNG files there
    keras-cmr extract-features --preset ./clip_preset --data my_pairs/ --out features.npz

An output that holds a result already is refused before any work unless --overwrite.
Exit status: 0 done, 2 bad input, 3 training failed (diverged or collapsed; nothing saved).
"""

import argparse
import importlib
import sys

from keras_cmr.cli import quiet

# One module per command (keras_cmr.cli.<name>, with `add_parser(commands)`), in help order.
# These modules, and what they import at their top, import no deep-learning framework: the
# console script (keras_cmr_cli) builds the parser before `keras_cmr` itself is imported.
COMMANDS = (
    "train",
    "evaluate",
    "compare",
    "plot",
    "extract",
    "index",
    "search",
)
# The exit status of a run whose training diverged or collapsed (2: bad input).
TRAINING_FAILED = 3
# The errors that are bad input (exit status 2).
BAD_INPUT = (ValueError, FileNotFoundError, TypeError, KeyError)
VERBOSE_HELP = ("show the frameworks' C++ start-up logs (oneDNN, CUDA probing, CPU features), "
                "hidden by default")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-cmr", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"keras_cmr.cli.{name}").add_parser(commands)
    for command in commands.choices.values():
        # SUPPRESS: a command's default must not undo `keras-cmr --verbose COMMAND`.
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                             help=VERBOSE_HELP)
    return parser


def main(argv=None):
    """Runs the command line `argv` (default: sys.argv) in a process that imports keras_cmr
    as usual; returns the exit status. The console script is `keras_cmr_cli.main`."""
    args = parse(argv)
    return check(args) or run(args)


def parse(argv=None):
    """The parsed command line (argparse exits on --help and bad usage); unless --verbose, the
    frameworks' log levels are set for a quiet start."""
    args = build_parser().parse_args(argv)
    if not args.verbose:
        quiet.quiet_environment()
    return args


def check(args):
    """The command's checks that need no framework (`args.check`: its outputs, e.g. a finished
    run that only --overwrite may replace), made before any work; returns the exit status: 0,
    or 2 after one line on stderr."""
    try:
        args.check(args)
    except BAD_INPUT as error:
        return report_bad_input(args, error)
    return 0


def run(args):
    """Runs the parsed command; returns the exit status."""
    from keras_cmr.failures import TrainingFailure

    join_processes()
    try:
        return args.run(args) or 0
    except BAD_INPUT as error:
        return report_bad_input(args, error)
    except TrainingFailure as failure:
        # The run diverged or collapsed: nothing was saved (the commands save after training).
        print(f"keras-cmr {args.command}: training failed: {failure}", file=sys.stderr)
        return TRAINING_FAILED


def report_bad_input(args, error):
    """Bad input is the user's to fix: one clear line, no traceback; returns exit status 2."""
    print(f"keras-cmr {args.command}: error: {error}", file=sys.stderr)
    return 2


def join_processes():
    """Joins a multi-process JAX job when the launcher's variables ask for one (docs/scaling.md),
    before any backend work; a plain run does nothing."""
    from keras_cmr.distribution import processes

    if processes.multiprocess_requested():
        processes.initialize_processes()


if __name__ == "__main__":
    sys.exit(main())
