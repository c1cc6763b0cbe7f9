"""Ablation of MET on validation and test: which part of the soft contrastive loss helps.

Starting from an experiment file's chosen MET (`soft_contrastive`), each variant changes one
thing and is trained over the same seeds from the same per-seed source model:
relaxed labels only (fixed margin), relaxed margins only (hard labels), a sigma sweep, a delta
sweep, with and without intra-modal terms, and the no-source control (the same loss with
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


def variants(met, control):
    """(name, method, soft contrastive options) of every variant, MET's chosen one first."""
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
    no_source = {key: value for key, value in met.items() if key != "sigma"}
    rows.append(("no-source control, MET's options (w = lam * y)", "control", no_source))
    if control != no_source:
        rows.append(("no-source control, its own tuned options", "control", control))
    return rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="experiment file (search.py's output)")
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 (default: the file's)")
    parser.add_argument("--results", required=True, help="JSON file of every run")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from keras_cmr import saving
    from keras_cmr.cli.options import read_experiment_file
    from keras_cmr.datasets import load_dataset
    from keras_cmr.experiment import TrainingConfig, run_method

    experiment = read_experiment_file(args.config)
    seeds = args.seeds or experiment.get("seeds", 5)
    fields = {key: value for key, value in experiment.items()
              if key not in ("data", "methods", "seeds")}
    base = TrainingConfig(**{**fields, "verbose": 0})
    dataset = load_dataset(experiment["data"])
    met, control = base.soft_contrastive, base.control_options()
    rows = variants(met, control)
    runs = []
    for seed in range(seeds):
        source, _ = run_method(base.source_method, dataset, base, seed=seed)
        for name, method, options in rows:
            config = dataclasses.replace(base, soft_contrastive=options,
                                         control_soft_contrastive=options)
            start = time.perf_counter()
            _, result = run_method(method, dataset, config, seed=seed,
                                   source=source if method == "met" else None)
            runs.append({"variant": name, "method": method, "options": options, "seed": seed,
                         "val_avg_map": result["best_val_avg_map"],
                         "test": result["test"], "epochs": result["epochs"]})
            print(f"seed {seed} {name:<55} val {result['best_val_avg_map']:.4f} "
                  f"test {result['test']['avg_map']:.4f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
            saving.write_json({"config": args.config, "seeds": seeds, "runs": runs},
                              args.results)
    print("\n| variant | val avg mAP | test avg mAP | test I2T | test T2I |\n|---|---|---|---|---|")
    for name, _, _ in rows:
        chosen = [run for run in runs if run["variant"] == name]
        cell = lambda values: f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"  # noqa: E731
        print(f"| {name} | {cell([run['val_avg_map'] for run in chosen])} | "
              f"{cell([run['test']['avg_map'] for run in chosen])} | "
              f"{cell([run['test']['i2t_map'] for run in chosen])} | "
              f"{cell([run['test']['t2i_map'] for run in chosen])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
