"""Compare methods under one protocol with `keras_cmr.experiment`; print the test table.

Every method gets the same towers, optimiser (Adam, lr 1e-3, beta_1 0.5), batch size and
budget, and is selected by early stopping on the validation average mAP (validation carved
from train, stratified, seeded per seed); the test split is embedded once per selected model.
Within a seed, "met" and "kim" transfer from the "source" baseline trained in that seed (when
"source" is listed before them), as the method intends, instead of training a second source.
The table gives test image->text, text->image and average mAP@all as mean +- std over seeds.

Run it from the repository root:

    python examples/compare_methods.py                                  # digits, 3 seeds
    python examples/compare_methods.py --methods source,met --seeds 1 --epochs 5
    python examples/compare_methods.py --data wikipedia:../shared/data/wikipedia_sift_lda \\
        --methods source,contrastive,triplet,naive_sum,kim,met --seeds 5

Methods: source, source_pcl, contrastive, triplet, infonce, supervised_infonce, naive_sum,
dscmr, kim, met (see docs/method.md). The default data, "digits", is a download-free stand-in
(two half-image views of scikit-learn's digits), not image-text data.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits",
                        help="'digits' (default, no download), 'wikipedia:PATH' or 'npz:PATH'")
    parser.add_argument("--methods", default="source,contrastive,naive_sum,met",
                        help="comma-separated methods (default %(default)s)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="runs per method, seeds 0..N-1 (default %(default)s)")
    parser.add_argument("--epochs", type=int, default=200,
                        help="most epochs per stage; early stopping on the validation avg mAP "
                             "may end sooner (default %(default)s)")
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--embedding-dim", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--quiet", action="store_true", help="no Keras progress bars")
    args = parser.parse_args(argv)
    args.methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    if not args.methods:
        parser.error("--methods names no method")
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    return args


def main(argv=None):
    args = parse_args(argv)
    from keras_cmr.datasets import load_dataset
    from keras_cmr import methods
    from keras_cmr.experiment import (TrainingConfig, compare, format_table,
                                      summarize)

    unknown = [name for name in args.methods if name not in methods.available()]
    if unknown:
        print(f"compare_methods.py: error: unknown method(s) {unknown}; choose from "
              f"{methods.available()}", file=sys.stderr)
        return 2
    config = TrainingConfig(epochs=args.epochs, patience=args.patience,
                            embedding_dim=args.embedding_dim, batch_size=args.batch_size,
                            verbose=0 if args.quiet else 2)
    dataset = load_dataset(args.data)
    print(f"{dataset.name}: {', '.join(args.methods)} over {args.seeds} seed(s), "
          f"at most {config.epochs} epochs per stage, patience {config.patience}", flush=True)

    results = compare(args.methods, dataset, config, args.seeds,
                      log=lambda line: print(line, flush=True))

    print(f"\n{dataset.name}: test mAP@all, mean +- std over {args.seeds} seed(s), each model "
          "selected on the validation avg mAP ('val avg')")
    print(format_table(summarize(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
