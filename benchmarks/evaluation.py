"""Benchmark: keras-cmr mAP@all (image -> text) against a lower bound and two common baselines.

Run from the repository root:

    python benchmarks/evaluation.py [--sizes 1000,10000,40000] [--dim 512] [--classes 10]
                                    [--repeats N] [--rounds N] [--skip-argsort-above N]
                                    [--json PATH]

Inputs are random L2-normalised float32 embeddings (N queries x N gallery, `--dim` wide) with
random integer labels in [0, --classes). Every (method, size) runs in its own spawned process,
which builds the same inputs from the same seed, records `ru_maxrss` as its baseline, then runs
the method `--repeats` times; with `--rounds R` the list of methods of a size runs R times,
interleaved (bound, keras-cmr, ..., bound, keras-cmr, ...), and each method's best round is
kept, so that a loaded machine slows the bound as much as the rest. Reported: best wall time,
peak RSS increase over the baseline, the ratio of the time to the lower bound, and
|mAP - mAP(plain argsort)|.

Methods:
  keras-cmr  keras_cmr.evaluation.mean_average_precision(q, ql, g, gl)
  bound      lower bound: chunked matmul + np.sort of each row (values only), no metric at all
  argsort    plain vectorised: chunked matmul, np.argsort(-s, kind="stable"), gather relevance,
             cumsum precision
  research   full (1 - q @ g.T) distance matrix, np.argsort of the whole matrix, Python loop over
             queries computing the precision at each hit (sizes <= --research-max only)
  pml        pytorch-metric-learning's AccuracyCalculator(include=("mean_average_precision",),
             k=None) on CPU torch tensors (if installed; sizes <= --pml-max only)

Chunking of `bound` and `argsort` uses keras-cmr's automatic rule: a chunk's float32 scores stay
under 128 MB, i.e. chunk = 128 MB // (4 * N) queries.
"""

import argparse
import datetime
import json
import multiprocessing as mp
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHUNK_BYTES = 128 * 1024 * 1024
SEED = 0


def make_inputs(n, dim, classes):
    rng = np.random.default_rng(SEED)
    q = rng.standard_normal((n, dim), dtype=np.float32)
    g = rng.standard_normal((n, dim), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    ql = rng.integers(0, classes, n)
    gl = rng.integers(0, classes, n)
    return q, ql, g, gl


def chunk_size_for(n_gallery):
    return max(1, CHUNK_BYTES // (4 * n_gallery))


def run_keras_cmr(q, ql, g, gl):
    from keras_cmr.evaluation import mean_average_precision

    return float(mean_average_precision(q, ql, g, gl))


def run_bound(q, ql, g, gl):
    cs = chunk_size_for(len(g))
    buf = np.empty((cs, len(g)), np.float32)
    checksum = 0.0
    for start in range(0, len(q), cs):
        s = buf[: min(cs, len(q) - start)]
        np.matmul(q[start : start + cs], g.T, out=s)
        s.sort(axis=1)
        checksum += float(s[:, -1].sum())
    return None


def run_argsort(q, ql, g, gl):
    cs = chunk_size_for(len(g))
    n = len(g)
    ranks = np.arange(1, n + 1, dtype=np.float64)
    total = 0.0
    for start in range(0, len(q), cs):
        s = q[start : start + cs] @ g.T
        order = np.argsort(-s, axis=1, kind="stable")
        del s
        rel = gl[order] == ql[start : start + cs, None]
        del order
        hits = np.cumsum(rel, axis=1)
        n_rel = hits[:, -1]
        ap_sum = (hits / ranks * rel).sum(axis=1)
        ap = np.divide(ap_sum, n_rel, out=np.zeros_like(ap_sum), where=n_rel > 0)
        total += float(ap.sum())
    return total / len(q)


def run_research(q, ql, g, gl):
    dist = 1.0 - q @ g.T  # full Nq x Ng distance matrix
    order = np.argsort(dist, axis=1, kind="stable")
    del dist
    aps = []
    for i in range(len(q)):
        rel = gl[order[i]] == ql[i]
        hit_ranks = np.where(rel)[0]
        if len(hit_ranks) == 0:
            aps.append(0.0)
            continue
        precision = np.arange(1, len(hit_ranks) + 1) / (hit_ranks + 1.0)
        aps.append(float(precision.mean()))
    return float(np.mean(aps))


def run_pml(q, ql, g, gl):
    """pytorch-metric-learning's AccuracyCalculator; k=None retrieves the whole gallery."""
    import torch
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

    calculator = AccuracyCalculator(include=("mean_average_precision",), k=None,
                                    device=torch.device("cpu"))
    result = calculator.get_accuracy(torch.from_numpy(q), torch.from_numpy(ql),
                                     torch.from_numpy(g), torch.from_numpy(gl),
                                     ref_includes_query=False)
    return float(result["mean_average_precision"])


METHODS = {
    "keras-cmr": run_keras_cmr,
    "bound": run_bound,
    "argsort": run_argsort,
    "research": run_research,
    "pml": run_pml,
}


def _has_pml():
    try:
        import importlib.util

        return importlib.util.find_spec("pytorch_metric_learning") is not None
    except ImportError:
        return False


def _maxrss_bytes():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


def worker(method, n, dim, classes, repeats, conn):
    try:
        sys.path.insert(0, ROOT)
        if method == "keras-cmr":
            import keras_cmr.evaluation  # noqa: F401  (import cost is not part of the peak)
        inputs = make_inputs(n, dim, classes)
        base = _maxrss_bytes()
        times, value = [], None
        for _ in range(repeats):
            t0 = time.perf_counter()
            value = METHODS[method](*inputs)
            times.append(time.perf_counter() - t0)
        conn.send({"time": min(times), "peak": max(0, _maxrss_bytes() - base), "map": value})
    except BaseException as e:  # report, do not hang the parent
        conn.send({"error": repr(e)})
    finally:
        conn.close()


def measure(method, n, dim, classes, repeats):
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=worker, args=(method, n, dim, classes, repeats, child))
    p.start()
    child.close()
    result = parent.recv()
    p.join()
    return result


def header():
    lines = []
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        nproc = str(os.cpu_count())
    lines.append(f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}")
    lines.append(f"machine: {platform.machine()}, nproc={nproc}, cpu: {cpu}")
    # Other processes on the machine slow every method; the same-run ratios are what compares.
    lines.append(f"load average (1 min) at start: {os.getloadavg()[0]:.1f}")
    lines.append(f"python {platform.python_version()}, numpy {np.__version__}")
    try:
        from importlib.metadata import version

        lines.append(f"keras {version('keras')}")
    except Exception:
        lines.append("keras: not found")
    blas = []
    try:
        from threadpoolctl import threadpool_info

        np.ones((2, 2)) @ np.ones((2, 2))
        for info in threadpool_info():
            blas.append(
                f"{info.get('internal_api')} {info.get('version')} "
                f"threads={info.get('num_threads')} arch={info.get('architecture')} "
                f"({info.get('user_api')})"
            )
    except ImportError:
        try:
            cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
            blas.append(f"{cfg.get('name')} {cfg.get('version')}")
        except Exception:
            blas.append("unknown")
    lines.append("BLAS: " + "; ".join(blas))
    env = {k: os.environ[k] for k in sorted(os.environ) if k.startswith(("OPENBLAS", "OMP_", "MKL"))}
    lines.append(f"BLAS env: {env or 'none'}")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,40000")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=None,
                    help="best of N runs (default: 3 for N <= 10000, 1 above)")
    ap.add_argument("--research-max", type=int, default=10000,
                    help="run the research-code loop only up to this size")
    ap.add_argument("--pml-max", type=int, default=10000,
                    help="run pytorch-metric-learning only up to this size (its k-NN holds "
                         "the whole N x N ranking)")
    ap.add_argument("--skip-argsort-above", type=int, default=None,
                    help="skip the plain argsort way above this size (saves time)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="interleaved rounds over the methods; each method's best is kept")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]

    for line in header():
        print(line)
    print(f"dim={args.dim}, classes={args.classes}, mAP@all image->text, float32, seed={SEED}")
    print()
    cols = f"{'N':>6} | {'method':<9} | {'time s':>8} | {'x bound':>7} | {'peak MB':>8} | {'|dmAP| vs argsort':>17} | mAP"
    print(cols)
    print("-" * len(cols) + "---------")
    records = []
    for n in sizes:
        repeats = args.repeats or (3 if n <= 10000 else 1)
        methods = ["bound", "keras-cmr", "argsort", "research", "pml"]
        if n > args.research_max:
            methods.remove("research")
        if n > args.pml_max or not _has_pml():
            methods.remove("pml")
        if args.skip_argsort_above is not None and n > args.skip_argsort_above:
            methods.remove("argsort")
        res = {}
        for _ in range(args.rounds):
            for m in methods:
                r = measure(m, n, args.dim, args.classes, repeats)
                if m not in res or r.get("time", np.inf) < res[m].get("time", np.inf):
                    res[m] = r
        ref = res.get("argsort", {}).get("map")
        for m in methods:
            r = res[m]
            if "error" in r:
                print(f"{n:>6} | {m:<9} | ERROR {r['error']}")
                records.append({"n": n, "method": m, **r})
                continue
            ratio = r["time"] / res["bound"]["time"] if "time" in res["bound"] else float("nan")
            diff = None
            if r["map"] is not None and ref is not None:
                diff = abs(r["map"] - ref)
            dtxt = "-" if diff is None else (f"{diff:.1e}" + ("" if diff <= 1e-6 else " FAIL"))
            mtxt = "-" if r["map"] is None else f"{r['map']:.6f}"
            print(f"{n:>6} | {m:<9} | {r['time']:>8.3f} | {ratio:>7.2f} | "
                  f"{r['peak'] / 2**20:>8.0f} | {dtxt:>17} | {mtxt}", flush=True)
            records.append({"n": n, "method": m, "repeats": repeats, "time_s": r["time"],
                            "ratio_to_bound": ratio, "peak_bytes": r["peak"], "map": r["map"],
                            "abs_diff_vs_argsort": diff})
        if "research" in res and "time" in res["research"] and "time" in res["keras-cmr"]:
            print(f"{'':>6}   research / keras-cmr time: "
                  f"{res['research']['time'] / res['keras-cmr']['time']:.1f}x", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header(), "dim": args.dim, "classes": args.classes,
                       "results": records}, f, indent=2)


if __name__ == "__main__":
    main()
