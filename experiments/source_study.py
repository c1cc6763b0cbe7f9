"""Sources that know more: MET transferring from other sources, chosen on validation.

    KERAS_BACKEND=jax python experiments/source_study.py --config experiments/wikipedia.json \
        --rates 0.4,0.0 --seeds 5 --json experiments/results/sources_wikipedia_jax.json
    KERAS_BACKEND=jax python experiments/source_study.py --config experiments/wikipedia.json \
        --rates 0.4,0.8 --seeds 5 --variants pcl,supervised_infonce,sce,control \
        --json experiments/results/sources_robust_wikipedia_jax.json

Per rate and seed the validation split is carved from the clean training pairs
(`with_validation(fraction, seed)`), then the pooled train + val labels are flipped
(`with_label_noise(rate, seed)`): every variant sees the same pairs, the same noisy labels and
the same validation split. Each variant is `run_method("met", ...)` with its own out-of-fold
source (the experiment file's `source_folds` folds):

- `pcl`: the default, `source_pcl` on the noisy labels;
- `ensemble`: `source_pcl`, `source` and `source_regression` on the noisy labels, their
  embeddings concatenated and scaled by 1/sqrt(3), so that a source similarity is the mean of
  the three models' cosines;
- `naive_sum`: the naive-sum model (cross-entropy + contrastive, one model) as the source;
- `supervised_infonce`: the pair-wise supervised InfoNCE model as the source, on the same
  noisy labels (it reads the pairing too);
- `gce`, `sce`: the prototype source with a noise-robust loss on the same noisy labels,
  `source_pcl_gce` (generalized cross-entropy) and `source_pcl_sce` (symmetric
  cross-entropy), at their registered defaults;
- `clean_labels` (rates > 0 only): `source_pcl` trained on the clean labels of the same pairs,
  a source with information the target's labels lack (as a curated labelling would give);

and `control` (the same loss, no source) as the reference. Runs already in the JSON file are
skipped. `--report` prints validation and test means and each variant's paired difference to
`pcl` (95% paired t) on both splits; choose on the validation column.
"""

import argparse
import dataclasses
import os
import sys

import numpy as np

from keras_cmr.utils.files import read_json_object

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from noise_study import (EXPERIMENT_KEYS, attempt, figures, labelled, load_runs,  # noqa: E402
                         save_runs)

VARIANTS = ("pcl", "ensemble", "naive_sum", "supervised_infonce", "gce", "sce",
            "clean_labels", "control")
ENSEMBLE = ("source_pcl", "source", "source_regression")
# The variants that are one registered source trained on the noisy labels: {variant: method}.
NOISY_SOURCES = {"pcl": "source_pcl", "naive_sum": "naive_sum",
                 "supervised_infonce": "supervised_infonce", "gce": "source_pcl_gce",
                 "sce": "source_pcl_sce"}


def concatenated(sources, fingerprint):
    """One `OutOfFoldSource` whose rows are the sources' rows side by side / sqrt(count)."""
    from keras_cmr.experiment import OutOfFoldSource

    scale = np.float32(1.0 / np.sqrt(len(sources)))
    return OutOfFoldSource(
        np.concatenate([s.image for s in sources], axis=1) * scale,
        np.concatenate([s.text for s in sources], axis=1) * scale,
        sources[0].fold_ids, sum((s.encoders for s in sources), []),
        sum((s.folds for s in sources), []), sum(s.seconds for s in sources), fingerprint)


def variant_sources(clean, noisy, config, seed, variants):
    """{variant: source} for the variants that need one (the control needs none)."""
    from keras_cmr.experiment import OutOfFoldSource, out_of_fold_source

    fingerprint = OutOfFoldSource.fingerprint(noisy.train)

    def trained(dataset, method):
        source = out_of_fold_source(dataset, dataclasses.replace(config, source_method=method),
                                    seed)
        return dataclasses.replace(source, split_fingerprint=fingerprint)

    made = {variant: trained(noisy, method) for variant, method in NOISY_SOURCES.items()
            if variant in variants or (variant == "pcl" and "ensemble" in variants)}
    if "ensemble" in variants:
        made["ensemble"] = concatenated([made["pcl"]] + [trained(noisy, m) for m in ENSEMBLE[1:]],
                                        fingerprint)
    if "clean_labels" in variants:
        made["clean_labels"] = trained(clean, "source_pcl")
    return {name: made[name] for name in variants if name in made}


def run_study(args):
    from keras_cmr.datasets import load_dataset
    from keras_cmr.experiment import TrainingConfig

    experiment = read_json_object(args.config, "--config")
    fields = {k: v for k, v in experiment.items() if k not in EXPERIMENT_KEYS}
    config = TrainingConfig(**{**fields, "verbose": 0})
    base = load_dataset(experiment["data"])
    runs = [labelled(entries, "variant") for entries in load_runs(args.json)]
    done = {(run.label_noise["rate"], run.seed, variant) for variant, run in runs}
    meta = {"config": fields, "data": experiment["data"], "label_noise_kind": args.kind}
    for rate in [float(r) for r in args.rates.split(",")]:
        for seed in range(args.seeds):
            todo = [v for v in args.variants.split(",")
                    if (rate, seed, v) not in done and (rate or v != "clean_labels")]
            if not todo:
                continue
            clean = base.with_validation(config.validation_fraction, seed=seed)
            noisy = clean.with_label_noise(rate, seed=seed, kind=args.kind) if rate else clean
            sources = variant_sources(clean, noisy, config, seed, todo)
            for variant in todo:
                method = "control" if variant == "control" else "met"
                _, result = attempt(method, noisy, config, seed, sources.get(variant))
                result = dataclasses.replace(result, label_noise={"rate": rate, "kind": args.kind})
                if not result.failed:  # the fold sources' histories are not kept
                    result = dataclasses.replace(result, source_folds=None)
                runs.append((variant, result))
                save_runs(args.json, [{**run.to_dict(), "variant": variant}
                                      for variant, run in runs], meta)
                print(f"rate {rate} seed {seed} {variant:<13} {figures(result)}", flush=True)


def report(path, reference="pcl"):
    from keras_cmr.statistics import paired_difference

    runs = [labelled(entries, "variant") for entries in load_runs(path)]
    runs = [(variant, run) for variant, run in runs if not run.failed]
    for rate in sorted({run.label_noise["rate"] for _, run in runs}):
        scores = {}
        for variant, run in runs:
            if run.label_noise["rate"] == rate:
                scores.setdefault(variant, {})[run.seed] = (run.best_val_avg_map,
                                                            run.test["avg_map"])
        print(f"\nnoise rate {rate}: MET's source, mean over seeds; paired difference to "
              f"`{reference}` (95% paired t)\n")
        print("| source | seeds | val avg mAP | − pcl (val) | test avg mAP | − pcl (test) |")
        print("|---|---|---|---|---|---|")
        for variant in [v for v in VARIANTS if v in scores]:
            by_seed = scores[variant]
            line = f"| `{variant}` | {len(by_seed)} |"
            seeds = sorted(set(by_seed) & set(scores.get(reference, {})))
            for split in (0, 1):
                values = np.array([by_seed[s][split] for s in sorted(by_seed)])
                line += f" {values.mean():.4f} |"
                if variant != reference and len(seeds) >= 2:
                    diff = paired_difference([by_seed[s][split] for s in seeds],
                                             [scores[reference][s][split] for s in seeds])
                    low, high = diff["interval"]
                    line += f" {diff['mean']:+.4f} [{low:+.4f}, {high:+.4f}] |"
                else:
                    line += " |"
            print(line)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="experiments/wikipedia.json")
    parser.add_argument("--rates", default="0.4,0.0")
    parser.add_argument("--kind", default="symmetric", choices=("symmetric", "asymmetric"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--json", required=True)
    parser.add_argument("--report", action="store_true", help="print the tables only")
    args = parser.parse_args(argv)
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variant(s) {sorted(unknown)}; choose from {VARIANTS}")
    if not args.report:
        run_study(args)
    report(args.json)


if __name__ == "__main__":
    sys.exit(main())
