"""How far one seed's figures drift between backends over whole fits, against the seed spread.

Run from the repository root:

    python benchmarks/backend_drift.py [--data digits] [--config experiments/wikipedia.json]
                                       [--methods met] [--seeds 5] [--out DIR]

Runs `keras-cmr compare` once per backend (TensorFlow, JAX, PyTorch; each in its own process,
one after the other) with the same options, then prints, per method, each seed's test avg mAP
on every backend, the largest difference between two backends for that seed, the standard
deviation across seeds (per backend), and the ratio of the mean cross-backend difference to
that standard deviation (target: below 0.5). The runs' JSON files are kept in --out.
"""

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from keras_cmr.results import result_from_dict  # noqa: E402

BACKENDS = ("tensorflow", "jax", "torch")
CLI = os.path.join(ROOT, "keras_cmr_cli.py")


def run_backend(backend, args, path):
    command = [sys.executable, CLI, "compare", "--methods", args.methods, "--seeds",
               str(args.seeds), "--quiet", "--overwrite", "--json", path]
    command += ["--config", args.config] if args.config else ["--data", args.data]
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.exit(f"{backend} failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    return time.perf_counter() - start


def figures(path):
    """{method: {seed: test avg mAP}} of a compare JSON."""
    with open(path) as file:
        runs = [result_from_dict(run) for run in json.load(file)["runs"]]
    table = {}
    for run in runs:
        if not run.failed:
            table.setdefault(run.method, {})[run.seed] = run.test["avg_map"]
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--config", default=None)
    parser.add_argument("--methods", default="met")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/backend_drift")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    tables = {}
    for backend in BACKENDS:
        path = os.path.join(args.out, f"{backend}.json")
        seconds = run_backend(backend, args, path)
        print(f"{backend}: {seconds:.0f} s", flush=True)
        tables[backend] = figures(path)
    source = args.config or args.data
    for method in args.methods.split(","):
        print(f"\n{method} on {source}, test avg mAP per seed")
        print("seed | " + " | ".join(f"{b:>10}" for b in BACKENDS) + " | max |diff|")
        differences = []
        for seed in sorted(tables[BACKENDS[0]][method]):
            values = [tables[backend][method][seed] for backend in BACKENDS]
            difference = max(abs(a - b) for a, b in itertools.combinations(values, 2))
            differences.append(difference)
            print(f"{seed:4d} | " + " | ".join(f"{v:10.6f}" for v in values)
                  + f" | {difference:.2e}")
        spreads = [statistics.stdev(tables[backend][method].values()) for backend in BACKENDS]
        mean_difference = statistics.mean(differences)
        print("seed std | " + " | ".join(f"{s:10.6f}" for s in spreads))
        print(f"mean max |diff| / mean seed std: {mean_difference / statistics.mean(spreads):.2e}"
              " (target < 0.5)")


if __name__ == "__main__":
    main()
