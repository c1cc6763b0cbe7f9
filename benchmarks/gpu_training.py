"""GPU benchmark: MET transfer training speed, and mAP@all timing, with jax, torch and keras only.

Run from the repository root on a GPU machine where only jax (CUDA), torch (CUDA) and keras
are installed (no tensorflow; `import tensorflow` is blocked in every training worker, so a run
on a machine that has it checks the same thing):

    python benchmarks/gpu_training.py [--pairs 320000] [--batch-size 300] [--epochs 2]
                                      [--eval-sizes 10000,40000] [--precision float32]
                                      [--device gpu] [--torch-compile] [--json PATH]

Training: the step of benchmarks/training.py (the same code, imported from its training_*.py
modules): frozen source forward +
target forward/backward + soft contrastive loss + Adam, towers 1024 -> 256 -> 1024, batch 300,
for keras-cmr's `TransferModel.fit` on the jax backend (jit_compile="auto" -> jax.jit) and on the
torch backend (jit_compile="auto" -> eager; Keras puts the variables on CUDA when torch sees a
GPU), a plain PyTorch eager loop and a plain jax.jit loop. Each method runs in its own process,
one after the other; 1 warm-up epoch, then --epochs timed epochs, best reported. The baselines
keep the whole data set on the GPU; keras-cmr feeds numpy batches from `PairBatches` (host ->
device copy every step), as `fit` does.

--precision float32 (default) runs float32 matmuls in full float32 on both frameworks
(JAX_DEFAULT_MATMUL_PRECISION=highest; torch's default allow_tf32=False); tf32 allows TF32 in
both; default leaves each framework's own default.

Evaluation: mAP@all image -> text at --eval-sizes (N x N, 512-d, 10 classes) through
benchmarks/evaluation.py's workers (keras-cmr and the sort-only lower bound). keras-cmr's
evaluation has no GPU path: it runs in numpy on the CPU of the GPU machine.

Prints everything to stdout; --json writes it all. Aim: under ~4 minutes on an H100/H200 with
the defaults.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from training_environment import header  # noqa: E402  (benchmarks/training_*.py)
from training_problem import (add_problem_arguments, check_problem_arguments,  # noqa: E402
                              config, step_flops)
from training_report import describe, format_table, summarize, target_lines  # noqa: E402
from training_runner import run_all  # noqa: E402


def gpu_lines():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
        return [f"gpu: {line}" for line in out.splitlines()] or ["gpu: nvidia-smi printed nothing"]
    except (OSError, subprocess.TimeoutExpired):
        return ["gpu: nvidia-smi not found"]


def precision_env(precision):
    if precision == "float32":
        return {"JAX_DEFAULT_MATMUL_PRECISION": "highest"}
    if precision == "tf32":  # torch: allow_tf32=True, set in the workers (cfg["torch_tf32"])
        return {"JAX_DEFAULT_MATMUL_PRECISION": "tensorfloat32"}
    return {}


def device_env(device):
    """Hides the GPU from both frameworks for a CPU test run."""
    return {"JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else {}


def rows(args, env):
    found = [("torch-eager", "torch-eager", "torch", {"KERAS_BACKEND": "torch", **env}, {}),
             ("jax-jit", "jax-jit", "jax", {"KERAS_BACKEND": "jax", **env}, {}),
             ("keras-cmr[jax]", "keras", "jax", {"KERAS_BACKEND": "jax", **env},
              {"jit_compile": "auto"}),
             ("keras-cmr[torch]", "keras", "torch", {"KERAS_BACKEND": "torch", **env},
              {"jit_compile": "auto"})]
    if args.torch_compile:
        found.append(("keras-cmr[torch,compile]", "keras", "torch",
                      {"KERAS_BACKEND": "torch", **env}, {"jit_compile": True}))
    return found


def run_evaluation(sizes, repeats, log):
    """mAP@all timings through benchmarks/evaluation.py (numpy, CPU), keras-cmr and bound."""
    import evaluation

    saved = {k: os.environ.get(k) for k in ("KERAS_BACKEND", "JAX_PLATFORMS")}
    # keras_cmr imports keras: the jax backend (no tensorflow), kept off the GPU.
    os.environ.update(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    records = []
    try:
        for n in sizes:
            for method in ("bound", "keras-cmr"):
                log(f"evaluation {method} N={n} ...")
                result = evaluation.measure(method, n, 512, 10, repeats)
                records.append({"n": n, "method": method, "repeats": repeats, **result})
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return records


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_problem_arguments(ap, pairs=320000, epochs=2, timeout=300)
    ap.add_argument("--precision", choices=("float32", "tf32", "default"), default="float32")
    ap.add_argument("--device", choices=("gpu", "cpu"), default="gpu",
                    help="cpu: hide the GPU (a quick test of the script anywhere)")
    ap.add_argument("--eval-sizes", default="10000,40000", help="'' to skip the evaluation")
    ap.add_argument("--eval-repeats", type=int, default=1)
    args = ap.parse_args(argv)
    check_problem_arguments(ap, args)
    args.fit_input, args.verbose = "pairbatches", 0

    start = time.perf_counter()

    def log(message):
        print(f"[{time.perf_counter() - start:6.1f} s] {message}", flush=True)

    cfg = config(args, device=args.device)
    cfg["block_tensorflow"] = True
    cfg["torch_tf32"] = args.precision == "tf32"
    env = {**device_env(args.device), **precision_env(args.precision)}
    head = header(gpu_lines() + [f"device: {args.device}, precision: {args.precision} "
                                 f"(env {precision_env(args.precision) or 'none'})"])
    for line in head:
        print(line, flush=True)
    peak, matmul, records = run_all(args, cfg, rows(args, env), matmul_env=env, log=log)
    summarize(records, cfg, peak)
    sizes = [int(s) for s in args.eval_sizes.split(",") if s]
    evaluation = run_evaluation(sizes, args.eval_repeats, log) if sizes else []

    print()
    print("\n".join(describe(cfg, peak, matmul)))
    print("matmul peak: best of torch and jax matmuls at the step's shapes on the "
          f"{'GPU' if args.device == 'gpu' else 'CPU'} ({matmul.get('gpu', 'no GPU name')}, "
          f"tf32={matmul.get('torch_tf32', 'n/a')})")
    for r in records:
        if "error" in r:
            continue
        extra = f", check: {r['check']}" if "check" in r else ""
        print(f"{r['method']}: device {r.get('device')}, {r.get('precision')}, "
              f"tensorflow imported: {r.get('tensorflow_imported')}{extra}")
        if args.device == "gpu" and "cuda" not in str(r.get("device", "")).lower() \
                and "gpu" not in str(r.get("device", "")).lower():
            print(f"WARNING: {r['method']} did not run on the GPU")
    print()
    print("\n".join(format_table(records)))
    print()
    print("\n".join(target_lines(records)) or "targets: torch-eager baseline failed")
    if evaluation:
        print()
        print("mAP@all image->text, 512-d, 10 classes: numpy on the CPU of this machine "
              "(keras-cmr's evaluation has no GPU path)")
        print(f"{'N':>6} | {'method':<9} | {'time s':>8} | {'x bound':>7} | {'peak MB':>8} | mAP")
        bound = {r["n"]: r.get("time") for r in evaluation if r["method"] == "bound"}
        for r in evaluation:
            if "error" in r:
                print(f"{r['n']:>6} | {r['method']:<9} | ERROR {r['error']}")
                continue
            ratio = r["time"] / bound[r["n"]] if bound.get(r["n"]) else float("nan")
            value = "-" if r["map"] is None else f"{r['map']:.6f}"
            print(f"{r['n']:>6} | {r['method']:<9} | {r['time']:>8.3f} | {ratio:>7.2f} | "
                  f"{r['peak'] / 2**20:>8.0f} | {value}")
    total = time.perf_counter() - start
    print(f"\ntotal wall time: {total:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": head, "config": cfg, "precision": args.precision,
                       "step_gflop": step_flops(cfg) / 1e9, "matmul": matmul,
                       "matmul_peak_gflops": peak, "results": records,
                       "targets": target_lines(records), "evaluation": evaluation,
                       "evaluation_note": "numpy on the CPU; keras-cmr has no GPU mAP path",
                       "total_s": total}, f, indent=2)


if __name__ == "__main__":
    main()
