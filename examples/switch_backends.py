"""Run the same training code on TensorFlow, JAX and PyTorch; compare the test figures.

keras_cmr is backend-agnostic Keras 3: nothing in `train_met.py` names a backend. This script
runs `python examples/train_met.py --quiet ...` once per backend, each in a fresh process with
`KERAS_BACKEND` set (Keras picks its backend once, at import), and prints each backend's test
average mAP@all, source and MET target, side by side.

The figures are close but not equal: the seed is the same, but each backend draws the initial
weights (and the dropout masks) with its own random number generator, so every backend starts
from different weights; floating-point reductions also differ slightly. On the digits
stand-in with the defaults (20 epochs per stage), the MET target's test avg mAP agreed across
the three backends within about 0.01 and the source's within about 0.04; after a shorter run
the spread is larger.

Run it from the repository root (each backend pays its own import and compilation):

    python examples/switch_backends.py                       # 3 backends, 20 epochs per stage
    python examples/switch_backends.py --epochs 5 --backends jax,torch
    python examples/switch_backends.py --keep-models runs/   # keep runs/met_<backend>.keras

A backend that is not installed, or whose run fails, is reported as failed (with the end of its
error output) and the others still run; the exit code is then 1.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

BACKENDS = ("tensorflow", "jax", "torch")
HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN_MET = os.path.join(HERE, "train_met.py")
# train_met.py's test table rows: name, then I2T, T2I and avg mAP.
ROW = re.compile(r"^(source \(stage 1\)|MET target)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s*$",
                 re.MULTILINE)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="comma-separated backends to run (default %(default)s)")
    parser.add_argument("--data", default="digits",
                        help="'digits' (default, no download), 'wikipedia:PATH' or 'npz:PATH'")
    parser.add_argument("--epochs", type=int, default=20,
                        help="most epochs per stage, for every backend (default %(default)s)")
    parser.add_argument("--embedding-dim", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-models", metavar="DIR",
                        help="save each backend's target encoder as DIR/met_<backend>.keras "
                             "(default: a temporary folder, removed)")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds allowed per backend (default %(default)s)")
    args = parser.parse_args(argv)
    args.backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = [name for name in args.backends if name not in BACKENDS]
    if unknown or not args.backends:
        parser.error(f"--backends: unknown {unknown}; choose from {', '.join(BACKENDS)}")
    return args


def parse_figures(output):
    """{"source (stage 1)": (i2t, t2i, avg), "MET target": (...)} from train_met.py's output."""
    return {match.group(1): tuple(float(match.group(i)) for i in (2, 3, 4))
            for match in ROW.finditer(output)}


def run_backend(backend, args, folder):
    """Runs train_met.py under `backend`; returns (figures or None, seconds, error text)."""
    command = [sys.executable, TRAIN_MET, "--quiet", "--data", args.data,
               "--epochs", str(args.epochs), "--embedding-dim", str(args.embedding_dim),
               "--seed", str(args.seed),
               "--output", os.path.join(folder, f"met_{backend}.keras")]
    env = {**os.environ, "KERAS_BACKEND": backend}
    start = time.perf_counter()
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - start, f"timed out after {args.timeout:.0f} s"
    seconds = time.perf_counter() - start
    figures = parse_figures(done.stdout)
    if done.returncode != 0 or len(figures) != 2:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        return None, seconds, f"exit code {done.returncode}:\n{tail}"
    return figures, seconds, ""


def main(argv=None):
    args = parse_args(argv)
    keep = args.keep_models
    folder = keep if keep else tempfile.mkdtemp(prefix="switch-backends-")
    os.makedirs(folder, exist_ok=True)
    print(f"train_met.py on {args.data}, {args.epochs} epochs per stage, seed {args.seed}, "
          f"once per backend: {', '.join(args.backends)}", flush=True)
    rows = {}
    try:
        for backend in args.backends:
            figures, seconds, error = run_backend(backend, args, folder)
            rows[backend] = (figures, seconds)
            if figures is None:
                print(f"  {backend}: FAILED after {seconds:.0f} s, {error}", flush=True)
            else:
                print(f"  {backend}: done in {seconds:.0f} s", flush=True)
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)

    print("\ntest avg mAP@all per backend; they differ slightly because the initial weights "
          "do:\neach backend draws them with its own random number generator")
    print(f"{'backend':<12}{'source':>10}{'MET target':>12}{'MET I2T':>10}{'MET T2I':>10}"
          f"{'seconds':>9}")
    for backend, (figures, seconds) in rows.items():
        if figures is None:
            print(f"{backend:<12}{'failed':>10}{'failed':>12}{'':>10}{'':>10}{seconds:>9.0f}")
            continue
        source, target = figures["source (stage 1)"], figures["MET target"]
        print(f"{backend:<12}{source[2]:>10.4f}{target[2]:>12.4f}{target[0]:>10.4f}"
              f"{target[1]:>10.4f}{seconds:>9.0f}")
    if keep:
        print(f"\ntarget encoders kept in {keep}/met_<backend>.keras; a file saved on one "
              "backend loads on any other")
    return 1 if any(figures is None for figures, _ in rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
