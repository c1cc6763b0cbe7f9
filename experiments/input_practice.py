"""Input practice (issue 15, item 2): what each preprocessing and regularisation option buys
every method, chosen on validation only.

    KERAS_BACKEND=jax python experiments/input_practice.py --config experiments/wikipedia.json \
        --seeds 3 --json experiments/results/input_practice_wikipedia_jax.json
    python experiments/input_practice.py --json experiments/results/input_practice_wikipedia_jax.json \
        --report

Each setting is the experiment file's protocol with one change (`SETTINGS`); `compare` runs every
method of it for seeds 0..n-1 (the transfer methods share the seed's source, trained on the same
preprocessed inputs). Preprocessing is fitted on the carved training split only
(`keras_cmr.experiment.setting`). Runs already in the JSON file are skipped; the file is
rewritten atomically after every run. `--report` prints, per method and setting, the mean
paired difference to the protocol on validation and on test avg mAP (`paired_by_setting` also
gives their 95% paired t intervals), then the setting each method picks
on validation and what it gives on test.
"""

import argparse
import os
import sys

from keras_cmr.utils.files import read_json_object

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from noise_study import labelled, save_runs  # noqa: E402

EXPERIMENT_KEYS = ("data", "methods", "seeds")
SETTINGS = {
    "protocol": {},
    "hellinger image": {"image_preprocessing": ["hellinger"]},
    "standardize both": {"image_preprocessing": ["standardize"],
                         "text_preprocessing": ["standardize"]},
    "hellinger + standardize": {"image_preprocessing": ["hellinger", "standardize"],
                                "text_preprocessing": ["standardize"]},
    "l2 both": {"image_preprocessing": ["l2"], "text_preprocessing": ["l2"]},
    "pca_whiten both": {"image_preprocessing": ["pca_whiten"],
                        "text_preprocessing": ["pca_whiten"]},
    "weight decay 0.01": {"weight_decay": 1e-2},
    "weight decay 0.1": {"weight_decay": 1e-1},
    "input dropout 0.1": {"input_dropout": 0.1},
    "input dropout 0.3": {"input_dropout": 0.3},
    "width 512": {"hidden_dims": [512]},
    "width 2048": {"hidden_dims": [2048]},
}


def load_runs(path):
    """[(setting, run)] of the study's JSON file (none before its first run)."""
    runs = read_json_object(path, "--json")["runs"] if os.path.exists(path) else []
    return [labelled(entries, "setting") for entries in runs]


def saved(setting, run):
    """A run as the study saves it: with its setting, without its test curves."""
    entries = {**run.to_dict(), "setting": setting}
    entries.pop("test_curves", None)
    return entries


def run_study(args):
    from keras_cmr.config import TrainingConfig
    from keras_cmr.datasets import load_dataset
    from keras_cmr.experiment import compare

    names = args.settings.split(",") if args.settings else list(SETTINGS)
    unknown = [name for name in names if name not in SETTINGS]
    if unknown:
        raise SystemExit(f"unknown setting(s) {unknown}; choose from {list(SETTINGS)}")
    experiment = read_json_object(args.config, "--config")
    protocol = {k: v for k, v in experiment.items() if k not in EXPERIMENT_KEYS}
    base = load_dataset(experiment["data"])
    methods = args.methods.split(",")
    meta = {"config": protocol, "data": experiment["data"], "methods": methods,
            "settings": SETTINGS}
    runs = load_runs(args.json)
    for name in names:
        config = TrainingConfig(**{**protocol, **SETTINGS[name], "verbose": 0})
        finished = [run for setting, run in runs if setting == name and run.method in methods]
        others = [(setting, run) for setting, run in runs
                  if setting != name or run.method not in methods]

        def save(results, name=name, others=others):
            save_runs(args.json, [saved(*entry) for entry in others]
                      + [saved(name, result) for result in results], meta)

        log = lambda line, name=name: print(f"[{name}] {line}", flush=True)  # noqa: E731
        results = compare(methods, base, config, args.seeds, log=log, finished=finished,
                          on_result=save, progress=False)
        runs = others + [(name, result) for result in results]


def paired_by_setting(runs, reference="protocol"):
    """{method: {setting: {"val", "test": paired_difference, "val_mean", "test_mean"}}} of
    `runs` ([(setting, run)]): each setting minus `reference`, paired over the seeds both
    ran."""
    import numpy as np

    from keras_cmr.statistics import paired_difference

    scores = {}
    for setting, r in runs:
        if not r.failed:
            scores.setdefault(r.method, {}).setdefault(setting, {})[r.seed] = (
                r.best_val_avg_map, r.test["avg_map"])
    table = {}
    for method, by_setting in scores.items():
        base = by_setting.get(reference, {})
        for setting, by_seed in by_setting.items():
            seeds = sorted(set(by_seed) & set(base))
            values = np.array([by_seed[s] for s in sorted(by_seed)])
            entry = {"seeds": len(values), "val_mean": float(values[:, 0].mean()),
                     "test_mean": float(values[:, 1].mean())}
            if setting != reference and len(seeds) >= 2:
                entry["val"] = paired_difference([by_seed[s][0] for s in seeds],
                                                 [base[s][0] for s in seeds])
                entry["test"] = paired_difference([by_seed[s][1] for s in seeds],
                                                  [base[s][1] for s in seeds])
            table.setdefault(method, {})[setting] = entry
    return table


def validation_choice(by_setting):
    """The setting with the highest mean validation avg mAP (ties: the first listed)."""
    return max(by_setting, key=lambda setting: by_setting[setting]["val_mean"])


def report(path):
    runs = load_runs(path)
    table = paired_by_setting(runs)
    settings = list(dict.fromkeys(setting for setting, _ in runs))
    seeds = max(entry["seeds"] for by_setting in table.values() for entry in by_setting.values())
    print(f"\nsetting − protocol, paired over seeds (up to {seeds}): mean difference of validation "
          f"/ of test avg mAP\n")
    print("| setting | " + " | ".join(f"`{m}`" for m in table) + " |")
    print("|---|" + "---|" * len(table))
    for setting in settings:
        cells = []
        for method in table:
            entry = table[method].get(setting)
            if entry is None:
                cells.append("")
            elif "test" not in entry:
                cells.append(f"val {entry['val_mean']:.4f} / test {entry['test_mean']:.4f}")
            else:
                cells.append(f"{entry['val']['mean']:+.4f} / {entry['test']['mean']:+.4f}")
        print(f"| {setting} | " + " | ".join(cells) + " |")
    print("\nchosen on validation\n\n| method | setting | val | test | test − protocol |")
    print("|---|---|---|---|---|")
    for method, by_setting in table.items():
        choice = validation_choice(by_setting)
        entry = by_setting[choice]
        gain = f"{entry['test']['mean']:+.4f}" if "test" in entry else "0"
        print(f"| `{method}` | {choice} | {entry['val_mean']:.4f} | {entry['test_mean']:.4f} "
              f"| {gain} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="experiments/wikipedia.json")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--methods",
                        default="met,control,kim,naive_sum,contrastive,supervised_infonce,"
                                "source_pcl,cca,label_regression")
    parser.add_argument("--settings", default="", help="comma-separated names of SETTINGS")
    parser.add_argument("--json", required=True)
    parser.add_argument("--report", action="store_true", help="print the tables only")
    args = parser.parse_args(argv)
    if args.report:
        report(args.json)
    else:
        run_study(args)


if __name__ == "__main__":
    main()
