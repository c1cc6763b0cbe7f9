"""Selective label trust: trust_temperature chosen on validation, and what the agreement sees.

    KERAS_BACKEND=jax python experiments/trust_study.py --config experiments/wikipedia.json \
        --rates 0.4,0.8 --seeds 5 --first-seed 5 --temperatures 0.03,0.1,0.3,1 \
        --json experiments/results/trust_temperature_wikipedia_jax.json
    python experiments/trust_study.py --json experiments/results/trust_temperature_wikipedia_jax.json \
        --report

For each noise rate and seed, the run's data set (symmetric label noise seeded by the seed, as
`keras-cmr compare --label-noise`) and its source (out-of-fold with the file's `source_folds`)
are made once; then `met` (trust="global") and `met_selective` at each temperature train from
that source. Every run records its best validation average mAP, which is what chooses the
temperature, and its test figures, which are stored but never read to choose. Each seed also
records how the agreements of its training pairs spread (mean, share at 1) and, as a
diagnostic only, their means over the pairs whose label the noise changed and over the rest
(the clean labels are read for this record, never by the rule). Runs already in the file are
skipped; it is rewritten atomically after every run.
"""

import argparse
import dataclasses
import os
import sys

import numpy as np

from keras_cmr.utils.files import atomic_path, read_json_object


def load(path):
    return read_json_object(path, "--json") if os.path.exists(path) else {"runs": [],
                                                                          "agreement": []}


def save(path, content):
    import json

    with atomic_path(path) as temporary:
        with open(temporary, "w") as stream:
            json.dump(content, stream, indent=1)


def flipped_rows(clean, train):
    """Which training pairs of the prepared (noisy, carved) data set had their label changed,
    found by their features among the clean data set's training (and validation) pairs."""
    def key(split, row):
        return split.image[row].tobytes() + split.text[row].tobytes()

    clean_label = {key(split, row): split.labels[row]
                   for split in (clean.train, clean.val) if split is not None
                   for row in range(split.num_pairs)}
    return np.array([clean_label[key(train, row)] != train.labels[row]
                     for row in range(train.num_pairs)])


def agreement_record(source, train, flipped, temperature):
    from keras import ops

    from keras_cmr.losses.label_trust import label_agreement

    a = ops.convert_to_numpy(label_agreement(source.image, source.text, train.labels,
                                             temperature=temperature))
    return {"temperature": temperature, "mean": float(a.mean()),
            "share_at_1": float(np.mean(a >= 1 - 1e-6)),
            "mean_flipped": float(a[flipped].mean()), "mean_kept": float(a[~flipped].mean())}


def run_study(args):
    from keras_cmr.config import TrainingConfig
    from keras_cmr.datasets import load_dataset
    from keras_cmr.experiment import Run

    experiment = read_json_object(args.config, "--config")
    config = TrainingConfig.from_experiment(experiment, verbose=0)
    base = load_dataset(experiment["data"])
    temperatures = [float(value) for value in args.temperatures.split(",")]
    content = load(args.json)
    content["config"] = {key: value for key, value in experiment.items() if key != "methods"}
    done = {(r["rate"], r["seed"], r["method"], r.get("trust_temperature"))
            for r in content["runs"]}
    for rate in [float(value) for value in args.rates.split(",")]:
        noisy = dataclasses.replace(config, label_noise={"rate": rate})
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            todo = [("met", None)] + [("met_selective", value) for value in temperatures]
            todo = [(m, value) for m, value in todo if (rate, seed, m, value) not in done]
            if not todo:
                continue
            run = Run(base, noisy, seed)
            source = run.source()
            train = run.dataset.train
            flipped = flipped_rows(base, train)
            content["agreement"] += [{"rate": rate, "seed": seed,
                                      "flipped_share": float(flipped.mean()),
                                      **agreement_record(source, train, flipped, value)}
                                     for value in temperatures]
            for method, value in todo:
                options = config.soft_contrastive
                if value is not None:
                    options = dataclasses.replace(options, trust_temperature=value)
                stage = Run(base, dataclasses.replace(noisy, soft_contrastive=options), seed)
                stage.use_source(source)
                _, result, _ = stage.method(method)
                content["runs"].append({
                    "rate": rate, "seed": seed, "method": method, "trust_temperature": value,
                    "best_val_avg_map": result.best_val_avg_map, "epochs": result.epochs,
                    "test": result.test, "seconds": result.seconds})
                save(args.json, content)
                print(f"rate {rate} seed {seed} {method} T={value}: val "
                      f"{result.best_val_avg_map:.4f} ({result.seconds:.0f} s)",
                      flush=True)


def report(path):
    from keras_cmr.statistics import paired_difference

    content = load(path)
    runs = content["runs"]
    for rate in sorted({r["rate"] for r in runs}):
        at_rate = [r for r in runs if r["rate"] == rate]
        met = {r["seed"]: r["best_val_avg_map"] for r in at_rate if r["method"] == "met"}
        print(f"\nnoise {rate}: validation avg mAP (noisy labels), met_selective - met paired "
              "over seeds (95% t)\n")
        print("| trust_temperature | seeds | val avg mAP | - met | 95% interval | mean a | "
              "a on kept labels | a on changed labels |")
        print("|---|---|---|---|---|---|---|---|")
        values = sorted({r["trust_temperature"] for r in at_rate if r["method"] != "met"})
        for value in [None] + values:
            scores = {r["seed"]: r["best_val_avg_map"] for r in at_rate
                      if r["trust_temperature"] == value}
            seeds = sorted(set(scores) & set(met))
            line = (f"| {'met (global)' if value is None else value} | {len(scores)} | "
                    f"{np.mean(list(scores.values())):.4f} |")
            if value is not None and len(seeds) >= 2:
                diff = paired_difference([scores[s] for s in seeds], [met[s] for s in seeds])
                low, high = diff["interval"]
                line += f" {diff['mean']:+.4f} | [{low:+.4f}, {high:+.4f}] |"
            else:
                line += " | |"
            records = [a for a in content["agreement"]
                       if a["rate"] == rate and a["temperature"] == value]
            if records:
                line += "".join(f" {np.mean([a[key] for a in records]):.3f} |"
                                 for key in ("mean", "mean_kept", "mean_flipped"))
            else:
                line += " | | |"
            print(line)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="experiments/wikipedia.json")
    parser.add_argument("--rates", default="0.4,0.8")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds first-seed .. first-seed + seeds - 1 (default 0)")
    parser.add_argument("--temperatures", default="0.03,0.1,0.3")
    parser.add_argument("--json", required=True)
    parser.add_argument("--report", action="store_true", help="print the tables and stop")
    args = parser.parse_args(argv)
    if not args.report:
        run_study(args)
    report(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
