"""Markdown tables for docs/results.md from `keras-cmr compare --json` files.

    python experiments/report.py experiments/results/compare_wikipedia_jax.json

Prints the main table (test I2T / T2I / average mAP@all, mean ± sample standard deviation over
seeds, and the mean best validation average mAP) and checks the issue's targets: MET above the
class-wise source, the best pair-wise-only loss, the naive sum and the no-source control, each
by more than one standard deviation of the seeds (the larger of the two methods').
"""

import argparse
import json
import sys

PAIR_WISE = ("contrastive", "triplet", "infonce", "supervised_infonce")


def cell(row, key):
    return f"{row[key]:.4f} ± {row[key + '_std']:.4f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="compare --json files")
    args = parser.parse_args(argv)
    from keras_cmr import methods

    for path in args.results:
        with open(path) as stream:
            content = json.load(stream)
        table = content["table"]
        print(f"\n{path}: {content['data']}, {content['seeds']} seeds\n")
        print("| method | what it is | test I2T mAP | test T2I mAP | test avg mAP | val avg mAP |")
        print("|---|---|---|---|---|---|")
        for method in content["methods"]:
            row = table[method]
            print(f"| `{method}` | {methods.get(method).description} | {cell(row, 'i2t_map')} | "
                  f"{cell(row, 't2i_map')} | **{cell(row, 'avg_map')}** | "
                  f"{row['best_val_avg_map']:.4f} |")
        if "met" not in table:
            continue
        met = table["met"]
        rivals = {"class-wise source": content["config"]["source_method"],
                  "naive sum": "naive_sum", "no-source control": "control"}
        pair_wise = [name for name in PAIR_WISE if name in table]
        if pair_wise:
            rivals["best pair-wise-only"] = max(pair_wise, key=lambda n: table[n]["avg_map"])
        print("\n| MET against | method | gap in test avg mAP | one std | beaten by > 1 std |")
        print("|---|---|---|---|---|")
        for label, method in rivals.items():
            if method not in table:
                continue
            gap = met["avg_map"] - table[method]["avg_map"]
            spread = max(met["avg_map_std"], table[method]["avg_map_std"])
            print(f"| {label} | `{method}` | {gap:+.4f} | {spread:.4f} | "
                  f"{'yes' if gap > spread else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
