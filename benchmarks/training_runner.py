"""The parent side of benchmarks/training.py: each method in a fresh process, one after another.

A fresh process per method because KERAS_BACKEND is fixed at import and because frameworks
loaded side by side would share (and fight over) the cores.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from training_problem import make_data, step_matmuls

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "training_worker.py")


def run_worker(kind, cfg, env=None, timeout=None):
    """Runs one worker in a fresh Python process; returns its result dict."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        command = [sys.executable, WORKER, kind, json.dumps(cfg), out]
        full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
        try:
            proc = subprocess.run(command, env=full_env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout} s"}
        if not os.path.exists(out):
            return {"error": f"worker exited with {proc.returncode}",
                    "stderr": proc.stderr[-3000:]}
        with open(out) as f:
            result = json.load(f)
        if "error" in result:
            result["stderr"] = proc.stderr[-2000:]
        return result


def run_all(args, cfg, rows, matmul_env=None, log=print):
    """Runs the matmul probe (before and after the methods) and every row.

    Returns (peak GFLOP/s, matmul results, records); the peak is the best rate seen.
    """
    log(f"matmul probe ({len(step_matmuls(cfg))} matmuls of the step) ...")
    probes = [run_worker("matmul", cfg, env=matmul_env)]
    records = []
    with tempfile.TemporaryDirectory() as data_dir:
        # The data are drawn once here; every worker loads the same arrays.
        for name, array in zip(("image", "text", "labels"), make_data(cfg)):
            np.save(os.path.join(data_dir, f"{name}.npy"), array)
        for label, kind, backend, env, overrides in rows:
            log(f"running {label} ...")
            start = time.perf_counter()
            result = run_worker(kind, {**cfg, **overrides, "data_dir": data_dir}, env=env,
                                timeout=args.timeout)
            result.update(method=label, backend=backend, wall_s=time.perf_counter() - start)
            if "error" in result:
                log(f"  ERROR {result['error']}\n{result.get('traceback', '')}"
                    f"{result.get('stderr', '')[-1500:]}")
            records.append(result)
    log("matmul probe again ...")
    probes.append(run_worker("matmul", cfg, env=matmul_env))
    matmul = dict(probes[0])
    for probe in probes[1:]:
        for key, value in probe.items():
            if isinstance(value, float):
                matmul[key] = max(value, matmul.get(key, 0.0))
    matmul["probes"] = probes
    rates = [v for v in matmul.values() if isinstance(v, float)]
    return (max(rates) if rates else float("nan")), matmul, records
