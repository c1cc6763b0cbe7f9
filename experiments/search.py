"""Hyperparameter search for the comparison, on validation average mAP only.

Five stages, each keeping the best setting of the ones before:
1. protocol (shared by every method): learning rate and tower width, scored by the mean
   validation avg mAP of a class-wise (source), a pair-wise (contrastive) and the MET model;
2. MET's source: which class-wise model MET transfers from (cosine CE at two scales, prototype
   contrastive, label regression), scored by MET's validation avg mAP;
3. MET's loss: sigma x delta x label_mix, then intra-modal weight and the InfoNCE form at the
   best of those; the no-source control gets the same delta x label_mix grid (it has no sigma),
   so that the ablation compares two tuned models;
4. grid edges (lam 0.9 for MET; delta 2-4 x lam 0.75, 0.9 for the control, whose best delta
   sat at the edge of stage 3), then calibrated relaxed labels ("row", "rank") x sigma x lam;
5. out-of-fold source embeddings (5 folds) for MET, plain and rank-calibrated, x lam, then
   lam 0.9 and delta 1, 2 at the best of those.
MET's choice is the best MET trial of stages 3-5, the control's the best of stages 3-4.

The validation split is carved from training per seed (stratified, seeded); the test split is
never embedded here. Every trial is written to the results file as it ends; a rerun reuses
the trials already in that file (same seeds), so an interrupted search continues where it
stopped. The chosen experiment file (the input of `keras-cmr compare --config`) is written at
the end.

    KERAS_BACKEND=jax python experiments/search.py \\
        --data wikipedia:../shared/data/wikipedia_sift_lda \\
        --results experiments/results/search_wikipedia.json \\
        --write-config experiments/wikipedia.json
"""

import argparse
import dataclasses
import itertools
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LEARNING_RATES = (1e-4, 3e-4, 1e-3)
HIDDEN_DIMS = ((256,), (1024,))
SOURCES = (("source", 16.0), ("source", 32.0), ("source_pcl", 16.0), ("source_regression", 16.0))
SIGMAS = (0.25, 0.5, 1.0, "median")
DELTAS = (1.0, 1.5, 2.0)
LABEL_MIXES = (0.5, 0.75)
INTRA_MODAL_WEIGHTS = (0.1, 0.3)
# Stage 4: the edges of stage 3's grid (its best lam, and the control's best delta, sat there),
# then the calibrated relaxed labels at the best delta.
EDGE_LABEL_MIX = 0.9
EDGE_CONTROL_DELTAS = (2.0, 2.5, 3.0, 4.0)
CALIBRATIONS = ("row", "rank")
CALIBRATED_SIGMAS = (0.25, 1.0, "median")
# Stage 5: out-of-fold (cross-fitted) source embeddings, so that the relaxed labels of the
# training pairs come from sources that never fitted them.
SOURCE_FOLDS = 5
# The final comparison's methods; "source" is the MET source when source_method is "source".
FINAL_METHODS = ("source", "source_pcl", "source_regression", "contrastive", "triplet",
                 "infonce", "supervised_infonce", "naive_sum", "dscmr", "kim", "met", "control")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="'wikipedia:PATH', 'npz:PATH' or 'digits'")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per trial (default 2)")
    parser.add_argument("--final-seeds", type=int, default=5,
                        help="seeds written into the experiment file (default 5)")
    parser.add_argument("--results", required=True, help="JSON file of every trial")
    parser.add_argument("--write-config", required=True, help="the chosen experiment file")
    return parser.parse_args(argv)


class Search:
    """Runs trials (mean validation avg mAP over seeds), caching trained sources per seed."""

    def __init__(self, dataset, seeds, results_path):
        self.dataset, self.seeds, self.results_path = dataset, seeds, results_path
        self.trials, self.sources, self.done = [], {}, {}
        if os.path.exists(results_path):
            with open(results_path) as stream:
                previous = json.load(stream)
            if previous.get("seeds") == seeds:
                self.done = {self.key(trial): trial for trial in previous["trials"]}

    @staticmethod
    def key(trial):
        described = {k: v for k, v in trial.items()
                     if k not in ("val_avg_map", "val_avg_map_seeds", "epochs", "seconds")}
        return json.dumps(described, sort_keys=True)

    def source(self, config, seed):
        """(trained source model, its run result) of `seed`; with source_folds > 1,
        (out-of-fold embeddings, None)."""
        from keras_cmr.experiment import make_source, run_method

        key = (config.learning_rate, config.hidden_dims, config.source_method, config.scale,
               config.source_folds, seed)
        if key not in self.sources:
            if config.source_folds > 1:
                self.sources[key] = make_source(self.dataset, config, seed), None
            else:
                self.sources[key] = run_method(config.source_method, self.dataset, config,
                                               seed=seed)
        return self.sources[key]

    def trial(self, stage, method, config, **described):
        from keras_cmr import methods
        from keras_cmr.experiment import run_method

        previous = self.done.get(self.key({"stage": stage, "method": method, **described}))
        if previous is not None:
            self.trials.append(previous)
            self.save()
            return previous["val_avg_map"]
        values, epochs, start = [], [], time.perf_counter()
        for seed in range(self.seeds):
            if method == config.source_method:
                _, result = self.source(config, seed)
            else:
                source = (self.source(config, seed)[0] if methods.get(method).needs_source
                          else None)
                _, result = run_method(method, self.dataset, config, seed=seed, source=source)
            values.append(result.best_val_avg_map)
            epochs.append(result.epochs)
        trial = {"stage": stage, "method": method, **described,
                 "val_avg_map": sum(values) / len(values), "val_avg_map_seeds": values,
                 "epochs": epochs, "seconds": round(time.perf_counter() - start, 1)}
        self.trials.append(trial)
        print(f"[{stage}] {method:<12} {described} val {trial['val_avg_map']:.4f} "
              f"({trial['seconds']:.0f} s)", flush=True)
        self.save()
        return trial["val_avg_map"]

    def save(self, chosen=None):
        """Writes this run's trials, then the file's earlier trials that this run did not
        revisit (a narrower rerun keeps them)."""
        from keras_cmr import saving

        visited = {self.key(trial) for trial in self.trials}
        earlier = [trial for key, trial in self.done.items() if key not in visited]
        saving.write_json({"seeds": self.seeds, "chosen": chosen,
                           "trials": self.trials + earlier}, self.results_path)


def main(argv=None):
    args = parse_args(argv)
    from keras_cmr import saving
    from keras_cmr.datasets import load_dataset
    from keras_cmr.experiment import TrainingConfig

    dataset = load_dataset(args.data)
    search = Search(dataset, args.seeds, args.results)
    base = TrainingConfig(epochs=200, verbose=0)

    # 1. The shared protocol.
    scores = {}
    for learning_rate, hidden in itertools.product(LEARNING_RATES, HIDDEN_DIMS):
        config = dataclasses.replace(base, learning_rate=learning_rate, hidden_dims=hidden)
        described = {"learning_rate": learning_rate, "hidden_dims": list(hidden)}
        scores[(learning_rate, hidden)] = sum(
            search.trial("protocol", method, config, **described)
            for method in ("source", "contrastive", "met")) / 3
    learning_rate, hidden = max(scores, key=scores.get)
    base = dataclasses.replace(base, learning_rate=learning_rate, hidden_dims=hidden)

    # 2. MET's source.
    scores = {}
    for source_method, scale in SOURCES:
        config = dataclasses.replace(base, source_method=source_method, scale=scale)
        scores[(source_method, scale)] = search.trial(
            "source", "met", config, source_method=source_method, scale=scale)
    source_method, scale = max(scores, key=scores.get)
    base = dataclasses.replace(base, source_method=source_method, scale=scale)

    # 3. MET's loss, then the control on the same grid.
    def loss_trial(method, **options):
        config = dataclasses.replace(base, soft_contrastive=options)
        return search.trial("loss", method, config, **options)

    scores = {}
    for sigma, delta, label_mix in itertools.product(SIGMAS, DELTAS, LABEL_MIXES):
        options = {"sigma": sigma, "delta": delta, "label_mix": label_mix}
        scores[json.dumps(options)] = loss_trial("met", **options)
    best = json.loads(max(scores, key=scores.get))
    for gamma in INTRA_MODAL_WEIGHTS:
        options = {**best, "intra_modal_weight": gamma}
        scores[json.dumps(options)] = loss_trial("met", **options)
    options = {**best, "form": "infonce"}
    scores[json.dumps(options)] = loss_trial("met", **options)

    control_scores = {}
    for delta, label_mix in itertools.product(DELTAS, LABEL_MIXES):
        options = {"delta": delta, "label_mix": label_mix}
        control_scores[json.dumps(options)] = loss_trial("control", **options)

    # 4. Grid edges for both, then calibrated relaxed labels for MET.
    def edge_trial(method, table, stage="edges", source_folds=1, **options):
        config = dataclasses.replace(base, soft_contrastive=options, source_folds=source_folds)
        described = options if source_folds == 1 else {**options, "source_folds": source_folds}
        table[json.dumps(described)] = search.trial(stage, method, config, **described)

    edge_trial("met", scores, **{**best, "label_mix": EDGE_LABEL_MIX})
    for delta, label_mix in itertools.product(EDGE_CONTROL_DELTAS, (0.75, EDGE_LABEL_MIX)):
        if json.dumps({"delta": delta, "label_mix": label_mix}) not in control_scores:
            edge_trial("control", control_scores, delta=delta, label_mix=label_mix)
    for calibration, sigma, label_mix in itertools.product(CALIBRATIONS, CALIBRATED_SIGMAS,
                                                           LABEL_MIXES):
        edge_trial("met", scores, **{**best, "calibration": calibration, "sigma": sigma,
                                     "label_mix": label_mix})

    # 5. Out-of-fold sources, at the best hard-label mixes and calibrations so far, then
    # around the best of those.
    for calibration, label_mix in itertools.product(("none", "rank"), LABEL_MIXES):
        options = {**best, "label_mix": label_mix}
        if calibration != "none":
            options.update(calibration=calibration, sigma=0.25)
        edge_trial("met", scores, stage="out_of_fold", source_folds=SOURCE_FOLDS, **options)
    out_of_fold = {key: value for key, value in scores.items() if "source_folds" in key}
    best_out_of_fold = json.loads(max(out_of_fold, key=out_of_fold.get))
    del best_out_of_fold["source_folds"]
    for change in ({"label_mix": EDGE_LABEL_MIX}, {"delta": 1.0}, {"delta": 2.0}):
        edge_trial("met", scores, stage="out_of_fold", source_folds=SOURCE_FOLDS,
                   **{**best_out_of_fold, **change})
    met_options = json.loads(max(scores, key=scores.get))
    source_folds = met_options.pop("source_folds", 1)
    control_options = json.loads(max(control_scores, key=control_scores.get))

    chosen = {
        "data": args.data, "methods": list(FINAL_METHODS), "seeds": args.final_seeds,
        "learning_rate": learning_rate, "hidden_dims": list(hidden),
        "source_method": source_method, "scale": scale, "source_folds": source_folds,
        "soft_contrastive": met_options,
        "method_options": {"control": control_options},
    }
    search.save(chosen)
    saving.write_json(chosen, args.write_config)
    print(f"chosen: {json.dumps(chosen)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
