"""Ablation of MET on validation and test: which part of the soft contrastive loss helps.

Starting from an experiment file's chosen MET (`soft_contrastive`), each variant changes one
thing and is trained over the same seeds from the same per-seed source model:
relaxed labels only (fixed margin), relaxed margins only (hard labels), a sigma sweep, a delta
sweep, with and without intra-modal terms, calibrated relaxed labels (row-normalised and
rank-based), out-of-fold source embeddings, and the no-source control (the same loss with
w = lam * y), with MET's options and with the control's own tuned options. Each variant is
selected by early stopping on validation; its test figures are measured once.

    KERAS_BACKEND=jax python experiments/ablation.py --config experiments/wikipedia.json \\
        --results experiments/results/ablation_wikipedia.json
"""

import argparse
import dataclasses
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIGMAS = (0.25, 0.5, 1.0, 2.0, "median")
DELTAS = (0.5, 1.0, 1.5, 2.0)
# The calibrations' best bandwidth in the validation search (stage 4 of search.py).
CALIBRATED_SIGMA = 0.25
SOURCE_FOLDS = 5


def variants(met, control, source_folds=1):
    """(name, method, soft contrastive options, source folds) of every variant, MET's first."""
    rows = [("MET (relaxed labels + relaxed margins)", "met", met),
            ("relaxed labels only (fixed margin)", "met", {**met, "margin": "fixed"}),
            ("relaxed margins only (hard labels)", "met", {**met, "label_weights": "hard"})]
    for sigma in SIGMAS:
        if sigma != met.get("sigma", 1.0):
            rows.append((f"sigma = {sigma}", "met", {**met, "sigma": sigma}))
    for delta in DELTAS:
        if delta != met.get("delta", 1.0):
            rows.append((f"delta = {delta}", "met", {**met, "delta": delta}))
    gamma = met.get("intra_modal_weight", 0.0)
    rows.append((f"intra-modal weight {0.3 if gamma == 0 else 0.0} (instead of {gamma})", "met",
                 {**met, "intra_modal_weight": 0.3 if gamma == 0 else 0.0}))
    for calibration in ("row", "rank"):
        if calibration != met.get("calibration", "none"):
            rows.append((f"{calibration}-calibrated relaxed labels (sigma {CALIBRATED_SIGMA})",
                         "met", {**met, "calibration": calibration, "sigma": CALIBRATED_SIGMA}))
    no_source = {key: value for key, value in met.items() if key not in ("sigma", "calibration")}
    rows.append(("no-source control, MET's options (w = lam * y)", "control", no_source))
    if control != no_source:
        rows.append(("no-source control, its own tuned options", "control", control))
    rows = [(name, method, options, source_folds) for name, method, options in rows]
    other_folds = SOURCE_FOLDS if source_folds == 1 else 1
    rows.insert(3, (f"{'out-of-fold' if other_folds > 1 else 'single'} source "
                    f"({other_folds} fold{'s' if other_folds > 1 else ''})", "met", met,
                    other_folds))
    return rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="experiment file (search.py's output)")
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 (default: the file's)")
    parser.add_argument("--results", required=True, help="JSON file of every run")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from keras_cmr import methods, saving
    from keras_cmr.utils.files import read_json_object
    from keras_cmr.datasets import load_dataset
    from keras_cmr.experiment import TrainingConfig, make_source, run_method

    experiment = read_json_object(args.config, "--config")
    seeds = args.seeds or experiment.get("seeds", 5)
    base = TrainingConfig.from_experiment(experiment, args.config, verbose=0)
    dataset = load_dataset(experiment["data"])
    met = base.soft_contrastive.to_dict()
    control = base.method_options.get("control", base.soft_contrastive).to_dict()
    rows = variants(met, control, base.source_folds)
    runs = []
    for seed in range(seeds):
        sources = {}  # per fold count: the seed's source model or out-of-fold embeddings
        for name, method, options, folds in rows:
            config = dataclasses.replace(base, soft_contrastive=options,
                                         method_options={"control": options},
                                         source_folds=folds)
            needs_source = methods.get(method).needs_source
            if needs_source and folds not in sources:
                sources[folds] = make_source(dataset, config, seed)
            start = time.perf_counter()
            _, result = run_method(method, dataset, config, seed=seed,
                                   source=sources[folds] if needs_source else None)
            runs.append({"variant": name, "method": method, "options": options,
                         "source_folds": folds, "seed": seed,
                         "val_avg_map": result.best_val_avg_map,
                         "test": result.test, "epochs": result.epochs})
            print(f"seed {seed} {name:<55} val {result.best_val_avg_map:.4f} "
                  f"test {result.test['avg_map']:.4f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
            saving.write_json({"config": args.config, "seeds": seeds, "runs": runs},
                              args.results)
    print("\n| variant | val avg mAP | test avg mAP | test I2T | test T2I |\n|---|---|---|---|---|")
    for name, *_ in rows:
        chosen = [run for run in runs if run["variant"] == name]
        cell = lambda values: f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"  # noqa: E731
        print(f"| {name} | {cell([run['val_avg_map'] for run in chosen])} | "
              f"{cell([run['test']['avg_map'] for run in chosen])} | "
              f"{cell([run['test']['i2t_map'] for run in chosen])} | "
              f"{cell([run['test']['t2i_map'] for run in chosen])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
