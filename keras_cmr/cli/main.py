"""The `keras-cmr` command: train, evaluate and compare cross-modal retrieval methods.

    keras-cmr train                       # MET on the default data (digits), prints the table
    keras-cmr train --method contrastive --data wikipedia:../shared/data/wikipedia_sift_lda
    keras-cmr evaluate runs/met/encoder.keras --data digits
    keras-cmr compare --data digits --methods source,contrastive,met --seeds 3 --json out.json
    keras-cmr compare --config experiments/wikipedia.json --json wikipedia.json
    keras-cmr plot wikipedia.json --out docs/figures/wikipedia
    keras-cmr extract-features --preset ./clip_preset --data my_pairs/ --out features.npz
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out


def build_parser():
    from keras_cmr.cli import compare, evaluate, extract, index, plot, search, train

    parser = argparse.ArgumentParser(
        prog="keras-cmr", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (train, evaluate, compare, plot, extract, index, search):
        module.add_parser(commands)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except (ValueError, FileNotFoundError, TypeError, KeyError) as error:
        # Bad input is the user's to fix: one clear line, no traceback.
        print(f"keras-cmr {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
