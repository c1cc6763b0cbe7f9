"""Markdown tables for docs/results.md from `keras-cmr compare --json` files.

    python experiments/report.py experiments/results/compare_wikipedia_jax.json \
        experiments/results/noise_wikipedia_jax.json

For each file with a "table" (compare --json), prints the main table (test I2T / T2I / average
mAP@all, mean ± sample standard deviation over seeds, and the mean best validation average
mAP) and checks the issue's targets: MET above the class-wise source, the best pair-wise-only
loss, the naive sum and the no-source control, each by more than one standard deviation of the
seeds (the larger of the two methods').

Then, over every file's "runs" (compare --json, or experiments/noise_study.py whose runs carry
a "label_noise" {"rate", "kind"} entry, several rates per file), grouped by setting (data,
noise rate, noise kind): the paired per-seed differences reference − rival of the test average
mAP (95% paired t interval, `keras_cmr.statistics.paired_comparisons`), and a verdict table
counting, per rival, the settings where the reference is better / tied / worse.
"""

import argparse
import sys

from keras_cmr.results import result_from_dict
from keras_cmr.statistics import paired_comparisons, verdict_table
from keras_cmr.utils.files import read_json_object

PAIR_WISE = ("contrastive", "triplet", "infonce", "supervised_infonce")


def cell(row, key):
    return f"{row[key]:.4f} ± {row[key + '_std']:.4f}"


def read_runs(path, content):
    """The "runs" of a file's `content` as `RunResult`s and `RunFailure`s."""
    try:
        return [result_from_dict(run) for run in content.get("runs", [])]
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def run_setting(content, run):
    """(data, noise rate, noise kind) of one run; the kind of a clean run (rate 0) is "none"."""
    noise = run.label_noise or (content.get("config") or {}).get("label_noise") or {}
    rate = float(noise.get("rate", 0.0))
    return (str(content.get("data", "?")), rate, noise.get("kind", "symmetric") if rate else "none")


def group_runs(files):
    """dict setting -> its runs, over every file's runs (`files`: [(content, runs)]),
    settings in order of appearance."""
    groups = {}
    for content, runs in files:
        for run in runs:
            groups.setdefault(run_setting(content, run), []).append(run)
    return groups


def print_paired(files, reference, key):
    """Prints the paired table and the verdict table of `files` ([(content, runs)]); returns
    the comparisons per setting."""
    comparisons = {}
    for setting, runs in group_runs(files).items():
        if any(run.method == reference for run in runs):
            comparisons[setting] = paired_comparisons(runs, reference, key)
    comparisons = {setting: rivals for setting, rivals in comparisons.items() if rivals}
    if not comparisons:
        return comparisons
    print(f"\n{reference} − rival, test {key}, per-seed paired differences (95% paired t)\n")
    print("| data | noise | rival | seeds | mean difference | 95% interval | verdict |")
    print("|---|---|---|---|---|---|---|")
    for (data, rate, kind), rivals in comparisons.items():
        for rival, result in rivals.items():
            low, high = result["interval"]
            print(f"| {data} | {rate:g} {kind} | {rival} | {result['n']} | "
                  f"{result['mean']:+.4f} | [{low:+.4f}, {high:+.4f}] | {result['verdict']} |")
    print(f"\n{reference} against each rival: settings where it is better / tied / worse\n")
    print("| rival | better | tie | worse |")
    print("|---|---|---|---|")
    for rival, counts in verdict_table(comparisons).items():
        print(f"| {rival} | {counts['better']} | {counts['tie']} | {counts['worse']} |")
    return comparisons


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+",
                        help="compare --json files or experiments/noise_study.py files")
    parser.add_argument("--reference", default="met", help="the method under test")
    parser.add_argument("--key", default="avg_map", choices=("avg_map", "i2t_map", "t2i_map"),
                        help="the test figure of the paired comparisons")
    args = parser.parse_args(argv)
    from keras_cmr import methods

    contents = [read_json_object(path, "results file") for path in args.results]
    files = [(content, read_runs(path, content)) for path, content in zip(args.results, contents)]
    for path, content in zip(args.results, contents):
        if "table" not in content:
            continue
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
    print_paired(files, args.reference, args.key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
