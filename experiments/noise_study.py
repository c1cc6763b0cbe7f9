"""Label-noise study: every method at each noise rate, paired over seeds.

    KERAS_BACKEND=jax python experiments/noise_study.py --config experiments/wikipedia.json \
        --rates 0.4,0.0 --seeds 10 --methods met,control,kim,naive_sum,contrastive \
        --json experiments/results/noise_wikipedia_jax.json

For each rate and seed s the training labels get `with_label_noise(rate, seed=s)` (the
validation split is carved from the noisy training pairs; the test split stays clean), then every
method trains under the experiment file's protocol with seed s, in one `Run`: transfer methods
share the seed's source (`Run.source`). Runs already in the JSON file are skipped, so a
killed study continues where it stopped; the file is rewritten atomically after every run.
`--report` prints, per rate, the mean test average mAP of each method and MET's paired
differences to each rival (95% paired t interval); `--plot PNG` draws test average mAP against
the noise rate, one line per method, the seeds' standard deviation shaded. `--extra PATH=LABEL`
adds the runs of another study file (another experiment file, the same seeds and rates) to the
report and the plot, each method named `METHOD+LABEL`; `--reference` names the method the
others are paired against; `--figure val` reports the best validation avg mAP (measured on the
noisy validation split) instead of test avg mAP; `--choose A,B=LABEL` adds, per rate and seed,
the run of A or B whose validation avg mAP is higher (a choice that reads no test figure and no
clean label); with `--choose-by source`, the run whose source has the higher validation avg mAP,
the rule of `TrainingConfig.source_candidates`. `--choose-source A,B=LABEL` makes such a choice
by the sources before the `--choose` ones, which may choose among its labels: the rule of
`source_candidates` with `method_candidates` (the source first, then the method):

    python experiments/noise_study.py --json experiments/results/noise_wikipedia_rerun_jax.json \
        --extra experiments/results/noise_wikipedia_mrl_source_jax.json=mrl_source \
        --reference met+mrl_source --report
"""

import argparse
import dataclasses
import os
import sys

from keras_cmr.results import RunFailure, result_from_dict
from keras_cmr.utils.files import atomic_path, read_json_object

EXPERIMENT_KEYS = ("data", "methods", "seeds")


def load_runs(path):
    """The runs of a study's JSON file as saved (none before its first run)."""
    return read_json_object(path, "--json")["runs"] if os.path.exists(path) else []


def read_runs(path):
    """The runs of the study's JSON file as `RunResult`s and `RunFailure`s."""
    return [result_from_dict(entries) for entries in load_runs(path)]


def labelled(entries, key):
    """`(entries[key], run)` of a run that a study saved with a label of its own (`key`)."""
    return entries[key], result_from_dict({k: v for k, v in entries.items() if k != key})


def save_runs(path, runs, meta):
    """Writes `meta` and `runs` (as saved: dicts) to `path`, atomically."""
    import json

    with atomic_path(path) as temporary:
        with open(temporary, "w") as stream:
            json.dump({**meta, "runs": runs}, stream, indent=1)


def run_study(args):
    from keras_cmr.datasets import load_dataset
    from keras_cmr.experiment import Run, TrainingConfig

    experiment = read_json_object(args.config, "--config")
    fields = {k: v for k, v in experiment.items() if k not in EXPERIMENT_KEYS}
    config = TrainingConfig(**{**fields, "verbose": 0})
    base = load_dataset(experiment["data"])
    methods = args.methods.split(",")
    runs = read_runs(args.json)
    done = {(r.label_noise["rate"], r.seed, r.method) for r in runs}
    meta = {"config": fields, "data": experiment["data"], "methods": methods,
            "label_noise_kind": args.kind}
    for rate in [float(r) for r in args.rates.split(",")]:
        for seed in range(args.seeds):
            todo = [m for m in methods if (rate, seed, m) not in done]
            if not todo:
                continue
            dataset = base.with_label_noise(rate, seed=seed, kind=args.kind) if rate else base
            run = Run(dataset, config, seed)
            for method in todo:
                result = attempt(run, method)
                result = dataclasses.replace(result,
                                             label_noise={"rate": rate, "kind": args.kind})
                runs.append(result)
                save_runs(args.json, [run.to_dict() for run in runs], meta)
                print(f"rate {rate} seed {seed} {method:<12} {figures(result)}", flush=True)


def attempt(run, method):
    """`run.method(method)`'s result without test curves, or a `RunFailure` when it raised
    `TrainingFailure` (recorded so that it is not rerun; the reports leave it out)."""
    from keras_cmr.failures import TrainingFailure

    try:
        _, result, _ = run.method(method)
    except TrainingFailure as failure:
        return RunFailure(method, run.seed, str(failure))
    return dataclasses.replace(result, test_curves=None)


def figures(result):
    """One run's figures for the progress line."""
    if result.failed:
        return f"FAILED: {result.failure}"
    return (f"val {result.best_val_avg_map:.4f} test {result.test['avg_map']:.4f} "
            f"({result.seconds:.0f} s)")


def study_runs(path, extra=()):
    """The runs of `path` and of each `(path, label)` in `extra`, those with their methods
    renamed `METHOD+LABEL`."""
    runs = read_runs(path)
    for extra_path, label in extra:
        runs += [dataclasses.replace(run, method=f"{run.method}+{label}")
                 for run in read_runs(extra_path)]
    return runs


def source_validation(run):
    """The best validation avg mAP of the source `run` learned from (the mean over its folds
    for out-of-fold sources), as `TrainingConfig.source_candidates` chooses by."""
    if "source" in run.history:
        return run.history["source"]["best_val_avg_map"]
    if run.source_folds:
        return sum(fold["best_val_avg_map"] for fold in run.source_folds) / len(run.source_folds)
    raise ValueError(f"the {run.method} run of seed {run.seed} recorded no source")


def chosen_on_validation(runs, candidates, label, by="method"):
    """For each (rate, seed) where every method in `candidates` ran, the run with the highest
    validation figure, renamed `label`: a choice made on the noisy validation split alone.
    `by`: "method", the run's best validation avg mAP; "source", its source's
    (`source_validation`); the first listed candidate wins a tie."""
    figure = {"method": lambda run: run.best_val_avg_map, "source": source_validation}[by]
    by_key = {}
    for run in runs:
        if run.method in candidates and not run.failed:
            by_key.setdefault((run.label_noise["rate"], run.seed), []).append(run)
    chosen = []
    for group in by_key.values():
        if len(group) == len(candidates):
            group.sort(key=lambda run: candidates.index(run.method))
            chosen.append(dataclasses.replace(max(group, key=figure), method=label))
    return chosen


def _labelled_value(text, option, form):
    """(value, label) of "VALUE=LABEL", both non-empty; an argparse error naming `option`."""
    value, separator, label = text.rpartition("=")
    if not separator or not value or not label:
        raise argparse.ArgumentTypeError(f"{option} takes {form}, got {text!r}")
    return value, label


def parse_choice(text):
    """(candidate methods, label) of "A,B=LABEL"."""
    names, label = _labelled_value(text, "--choose", "A,B=LABEL")
    candidates = tuple(name for name in names.split(",") if name)
    if len(candidates) < 2:
        raise argparse.ArgumentTypeError(f"--choose takes A,B=LABEL, got {text!r}")
    return candidates, label


def parse_extra(text):
    """(path, label) of "PATH=LABEL"."""
    return _labelled_value(text, "--extra", "PATH=LABEL")


def report(runs, reference="met", figure="test"):
    """Prints, per rate, each method's mean `figure` ("test": test avg mAP; "val": the best
    validation avg mAP, on the noisy validation split) and its paired difference to
    `reference`."""
    import numpy as np

    from keras_cmr.statistics import paired_difference

    for rate in sorted({r.label_noise["rate"] for r in runs}):
        at_rate = [r for r in runs if r.label_noise["rate"] == rate and not r.failed]
        scores = {}
        for r in at_rate:
            scores.setdefault(r.method, {})[r.seed] = (
                r.test["avg_map"] if figure == "test" else r.best_val_avg_map)
        print(f"\nnoise rate {rate}: {figure} avg mAP@all (mean ± std over seeds)\n")
        print(f"| method | seeds | {figure} avg mAP | {reference} − method (95% paired t) "
              "| verdict |")
        print("|---|---|---|---|---|")
        for method, by_seed in scores.items():
            values = np.array(list(by_seed.values()))
            line = f"| `{method}` | {len(values)} | {values.mean():.4f} ± {values.std(ddof=1):.4f} |"
            seeds = sorted(set(by_seed) & set(scores.get(reference, {})))
            if method != reference and len(seeds) >= 2:
                diff = paired_difference([scores[reference][s] for s in seeds],
                                         [by_seed[s] for s in seeds])
                low, high = diff["interval"]
                line += f" {diff['mean']:+.4f} [{low:+.4f}, {high:+.4f}] | {diff['verdict']} |"
            else:
                line += " | |"
            print(line)


def noise_curves(runs):
    """method -> (rates, mean test avg mAP, std over seeds) of `runs` (`RunResult`s and
    `RunFailure`s), rates ascending."""
    import numpy as np

    curves = {}
    for method in dict.fromkeys(r.method for r in runs):
        by_rate = {}
        for r in runs:
            if r.method == method and not r.failed:
                by_rate.setdefault(r.label_noise["rate"], []).append(r.test["avg_map"])
        rates = sorted(by_rate)
        values = [np.array(by_rate[rate]) for rate in rates]
        curves[method] = (rates, [v.mean() for v in values],
                          [v.std(ddof=1) if len(v) > 1 else 0.0 for v in values])
    return curves


def plot(runs, png, methods=None):
    """Draws test avg mAP against the noise rate in `png`: one line per method of `runs`, or
    per name in `methods` (in that order)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 4))
    if methods:
        runs = sorted((r for r in runs if r.method in methods),
                      key=lambda r: methods.index(r.method))
    for method, (rates, means, stds) in noise_curves(runs).items():
        means, stds = [float(m) for m in means], [float(s) for s in stds]
        axes.plot(rates, means, marker="o", label=method)
        axes.fill_between(rates, [m - s for m, s in zip(means, stds)],
                          [m + s for m, s in zip(means, stds)], alpha=0.2)
    axes.set_xlabel("training labels flipped (symmetric noise rate)")
    axes.set_ylabel("test average mAP@all")
    axes.legend()
    figure.tight_layout()
    figure.savefig(png, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="experiments/wikipedia.json")
    parser.add_argument("--rates", default="0.4,0.0")
    parser.add_argument("--kind", default="symmetric", choices=("symmetric", "asymmetric"))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--methods", default="met,control,kim,naive_sum,contrastive")
    parser.add_argument("--json", required=True)
    parser.add_argument("--report", action="store_true", help="print the tables only")
    parser.add_argument("--plot", help="PNG of test avg mAP against the noise rate")
    parser.add_argument("--plot-methods", type=lambda text: text.split(","),
                        help="A,B,...: the methods --plot draws (default: every one)")
    parser.add_argument("--extra", type=parse_extra, action="append", default=[],
                        help="PATH=LABEL: another study file's runs in the report and plot")
    parser.add_argument("--reference", default="met",
                        help="the method the report pairs the others against")
    parser.add_argument("--choose", type=parse_choice, action="append", default=[],
                        help="A,B=LABEL: per rate and seed, the run of A or B with the higher "
                             "validation avg mAP, reported as LABEL")
    parser.add_argument("--choose-by", default="method", choices=("method", "source"),
                        help="what --choose compares: each run's best validation avg mAP, or "
                             "its source's (as source_candidates chooses)")
    parser.add_argument("--choose-source", type=parse_choice, action="append", default=[],
                        help="A,B=LABEL: as --choose by the runs' sources, made before every "
                             "--choose (which may then choose among these labels)")
    parser.add_argument("--figure", default="test", choices=("test", "val"),
                        help="report test avg mAP or the best (noisy) validation avg mAP")
    args = parser.parse_args(argv)
    if not args.report:
        run_study(args)
    runs = study_runs(args.json, args.extra)
    for candidates, label in args.choose_source:
        runs += chosen_on_validation(runs, candidates, label, "source")
    for candidates, label in args.choose:
        runs += chosen_on_validation(runs, candidates, label, args.choose_by)
    report(runs, args.reference, args.figure)
    if args.plot:
        plot(runs, args.plot, args.plot_methods)


if __name__ == "__main__":
    sys.exit(main())
