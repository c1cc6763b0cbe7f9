"""Benchmark: MET transfer training speed, keras-cmr on each Keras backend against plain loops.

Run from the repository root:

    python benchmarks/training.py [--pairs 32000] [--batch-size 300] [--epochs 3]
                                  [--backends tensorflow,jax,torch] [--tf-jit both]
                                  [--torch-compile] [--steps-per-execution auto]
                                  [--fit-input pairbatches] [--verbose 0]
                                  [--skip-baselines] [--json PATH]

One training step of MET stage 2 at CLIP4CMR's shapes: a frozen source encoder embeds the batch
(inference mode, no gradient), the target encoder embeds it (dropout on), the soft contrastive
loss (library defaults: sigma 1, delta 1.5, label_mix 0.75, relative distances) compares them,
and Adam (lr 1e-3, beta_1 0.5, as `keras_cmr.experiment`) updates the target. Every tower of
source and target is `ProjectionTower(1024, hidden_dims=(256,))`: 1024 -> 256 -> GELU -> 1024 ->
dropout 0.1 -> L2 normalise, on 1024-d image and 1024-d text features. The data are `--pairs`
random float32 feature pairs (seed 0) with labels in [0, --classes); an epoch is
floor(pairs / batch) full batches (32,000 / 300: 106 batches, 31,800 pairs; the last 200
pairs are dropped so every step has the same shapes).

Methods (each in its own subprocess, one after the other):
  keras-cmr   `TransferModel.fit` on a `PairBatches(..., drop_remainder=True)` PyDataset with
              verbose=0, source = a `SourceModel`'s encoder (random weights), per backend:
              tensorflow with jit_compile="auto" (what keras-cmr's `compile` call gets; Keras
              resolves it to False on a CPU-only TensorFlow) and with jit_compile=True (XLA);
              jax with "auto" (resolves to True: the whole step under jax.jit); torch with "auto"
              (resolves to False: eager) and, with --torch-compile, jit_compile=True
              (torch.compile, inductor).
  torch-eager a plain PyTorch loop: nn.Linear/GELU/Dropout heads, the loss re-written in torch,
              torch.optim.Adam, source forward under torch.no_grad(), batches sliced from
              in-memory tensors, the loss read once per epoch.
  jax-jit     a plain jax.numpy loop: the whole step (gather, source, target, loss, grad, Adam)
              under one jax.jit with params and optimizer state donated; optax.adam if optax is
              installed, else Adam written out.
Before timing, each baseline checks that its loss equals keras_cmr's `soft_contrastive` and its
tower equals `ProjectionTower` on a small random batch (max abs difference <= 1e-5).

Timing: epoch 1 is a warm-up (tracing, compilation); epochs 2..1+E are timed, each from a
device sync to a device sync (a variable copied to numpy); the best is reported, all are kept
in the JSON. For keras-cmr on tensorflow and jax the script counts how often the Python loss
runs (once per trace) and, on jax, how many XLA compilations happen (with --torch-compile: new
dynamo graphs), in each timed epoch: all must be 0.

FLOPs of one step (matmuls only; bias, GELU, normalisation, the loss's elementwise terms and
Adam are O(n * width) or O(n^2) and left out): with n the batch, D the feature width, H the
hidden width, E the embedding width, per tower f = 2n(DH + HE):
  source forward, 2 towers              2f
  target forward, 2 towers              2f
  target backward, 2 towers             2 * (2n(DH + HE) weight grads + 2nHE input grad of the
                                        output layer; the first layer's input grad is not needed)
  loss: source s t^T, target u v^T and its two grads   4 * 2 n^2 E
At the default shapes (n 300, D 1024, H 256, E 1024): 2.94 GFLOP per step.
The matmul peak is measured (numpy, one jax.jit of all of them, torch; one process) as the rate
of that very list of matmuls, run back to back (numpy and torch into preallocated outputs), best
of several trials, once before and once after the methods; the best rate seen is the peak.

Files: training_problem.py (shapes, data, FLOPs), training_reference.py (the plain loops),
training_worker.py (one measurement per process), training_runner.py (runs the workers),
training_report.py (the table), training_environment.py (versions, threads, devices).
"""

import argparse
import json
import sys

from training_environment import header
from training_problem import (add_problem_arguments, check_problem_arguments, config,
                              step_flops)
from training_report import check_lines, describe, format_table, summarize, target_lines
from training_runner import run_all


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_problem_arguments(ap, pairs=32000, epochs=3, timeout=1800)
    ap.add_argument("--backends", default="tensorflow,jax,torch")
    ap.add_argument("--tf-jit", choices=("auto", "xla", "both"), default="both",
                    help='tensorflow rows: jit_compile="auto", True (XLA), or both')
    ap.add_argument("--fit-input", choices=("pairbatches", "arrays"), default="pairbatches",
                    help="keras-cmr input: PairBatches(drop_remainder=True), or numpy arrays "
                         "with batch_size as keras_cmr.experiment does (last batch partial)")
    ap.add_argument("--verbose", type=int, default=0,
                    help="verbose of keras-cmr's fit (1: progress bar, as keras_cmr.experiment)")
    ap.add_argument("--skip-baselines", action="store_true")
    args = ap.parse_args(argv)
    check_problem_arguments(ap, args)
    return args


def method_rows(args):
    """(label, worker kind, backend, env, cfg overrides) of every method to run."""
    rows = []
    if not args.skip_baselines:
        rows.append(("torch-eager", "torch-eager", "torch", {"KERAS_BACKEND": "torch"}, {}))
        rows.append(("jax-jit", "jax-jit", "jax", {"KERAS_BACKEND": "jax"}, {}))
    for backend in args.backends.split(","):
        env = {"KERAS_BACKEND": backend}
        if backend == "tensorflow":
            if args.tf_jit in ("auto", "both"):
                rows.append(("keras-cmr[tensorflow]", "keras", backend, env,
                             {"jit_compile": "auto"}))
            if args.tf_jit in ("xla", "both"):
                rows.append(("keras-cmr[tensorflow,xla]", "keras", backend, env,
                             {"jit_compile": True}))
        elif backend == "jax":
            rows.append(("keras-cmr[jax]", "keras", backend, env, {"jit_compile": "auto"}))
        elif backend == "torch":
            rows.append(("keras-cmr[torch]", "keras", backend, env, {"jit_compile": "auto"}))
            if args.torch_compile:
                rows.append(("keras-cmr[torch,compile]", "keras", backend, env,
                             {"jit_compile": True}))
        elif backend:
            raise SystemExit(f"unknown backend {backend!r}")
    return rows


def main(argv=None):
    args = parse_args(argv)
    cfg = config(args)
    for line in header():
        print(line, flush=True)
    peak, matmul, records = run_all(args, cfg, method_rows(args),
                                    log=lambda m: print(m, file=sys.stderr, flush=True))
    summarize(records, cfg, peak)
    print("\n".join(describe(cfg, peak, matmul) + check_lines(records)))
    print()
    print("\n".join(format_table(records)))
    print()
    print("\n".join(target_lines(records)) or "targets: torch-eager baseline not run")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header(), "config": cfg, "step_gflop": step_flops(cfg) / 1e9,
                       "matmul": matmul, "matmul_peak_gflops": peak, "results": records,
                       "targets": target_lines(records)}, f, indent=2)


if __name__ == "__main__":
    main()
