"""Benchmark: keras_cmr.retrieval top-k search against faiss, and over a 10^6-item gallery.

Run from the repository root:

    python benchmarks/retrieval.py topk  [--queries 10000] [--gallery 100000] [--dim 512] [--k 10]
    python benchmarks/retrieval.py scale [--queries 1000] [--gallery 1000000] [--dim 512] [--k 10]
    (both: [--backends tensorflow,jax,torch] [--compute auto] [--rounds 1] [--repeats N]
     [--json PATH])

`topk` (issue #5, benchmark 3): random L2-normalised float32 queries and gallery in memory.
Methods: `keras-cmr/<backend>` is `BruteForceIndex().add(gallery)` then `search(queries, k)` on
each Keras backend; `faiss` is `faiss.IndexFlatIP` (exact) with the same rows. Reported: best
wall time of the searches (the index built once, outside the timing), queries per second, the
ratio of throughputs to faiss, the agreement of the returned ids with faiss' (same id at the
same rank) and of the top-k sets (recall@k of faiss' answer), and the peak resident memory
over the process' baseline.

`scale` (issue #8): a gallery of `--gallery` random rows written to `.npy` files of 100,000
rows each in a temporary folder, added with `add_npy` (left on disk, read chunk by chunk at
each search), random labels over 100 classes; one search of `--queries` queries, and
`evaluate_index` (mAP@k, recall@k) streamed over the same gallery. `faiss` adds the same files
(into its own memory). Reported: wall time, queries per second, gallery rows scored per second,
peak resident memory.

`--compute` is `BruteForceIndex(compute=...)`: "auto" (the host's BLAS on a CPU-only backend),
"host" or "keras" (the backend's `keras.ops`). `--rounds N` runs the whole list of methods N
times, interleaved (faiss, backend 1, ..., faiss, backend 1, ...), and reports each method's
best round, so that a loaded machine slows the reference as much as the others.

Every method runs in its own spawned process, one after the other, so none shares threads or
memory with another; inputs come from a fixed seed.
"""

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evaluation import header  # noqa: E402

SEED = 0
FILE_ROWS = 100_000


def random_rows(rng, count, dim):
    rows = rng.standard_normal((count, dim), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_index(method, backend, compute):
    if method == "faiss":
        from keras_cmr.retrieval import FaissIndex

        return FaissIndex()
    os.environ["KERAS_BACKEND"] = backend
    from keras_cmr.retrieval import BruteForceIndex

    return BruteForceIndex(compute=compute)


def load_average():
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def best_of_rounds(args, run_method):
    """{(method, backend): best result over `args.rounds` interleaved rounds}."""
    best = {}
    for round_index in range(args.rounds):
        for method, backend in methods(args):
            result = run_method(method, backend, round_index)
            key = (method, backend)
            if key not in best or result["time"] < best[key]["time"]:
                best[key] = result
    return best


def topk_worker(method, backend, args, out_path, conn):
    rng = np.random.default_rng(SEED)
    queries = random_rows(rng, args.queries, args.dim)
    gallery = random_rows(rng, args.gallery, args.dim)
    index = build_index(method, backend, args.compute)
    baseline = peak_rss_mb()
    index.add(gallery)
    index.search(queries[:64], args.k, verbose=False)  # first calls: kernels, compilation
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        _, ids = index.search(queries, args.k, verbose=False)
        times.append(time.perf_counter() - start)
    np.save(out_path, ids)
    conn.send({"time": min(times), "peak_mb": peak_rss_mb() - baseline})


def write_gallery(folder, count, dim):
    """The gallery as .npy files of FILE_ROWS rows, written a file at a time."""
    rng = np.random.default_rng(SEED + 1)
    paths = []
    for start in range(0, count, FILE_ROWS):
        path = os.path.join(folder, f"gallery_{start // FILE_ROWS:04d}.npy")
        np.save(path, random_rows(rng, min(FILE_ROWS, count - start), dim))
        paths.append(path)
    labels = rng.integers(0, 100, count)
    return paths, labels


def scale_worker(method, backend, args, paths, labels, conn):
    from keras_cmr.retrieval import evaluate_index

    rng = np.random.default_rng(SEED)
    queries = random_rows(rng, args.queries, args.dim)
    query_labels = rng.integers(0, 100, args.queries)
    index = build_index(method, backend, args.compute)
    baseline = peak_rss_mb()
    start = time.perf_counter()
    for path in paths:
        index.add_npy(path)
    add_time = time.perf_counter() - start
    index.search(queries[:8], args.k, verbose=False)  # first calls: kernels, compilation
    start = time.perf_counter()
    index.search(queries, args.k, verbose=False)
    search_time = time.perf_counter() - start
    start = time.perf_counter()
    metrics = evaluate_index(index, queries, query_labels, labels, k=args.k,
                             k_values=(1, args.k), verbose=False)
    evaluate_time = time.perf_counter() - start
    conn.send({"add_time": add_time, "time": search_time, "evaluate_time": evaluate_time,
               "metrics": metrics, "peak_mb": peak_rss_mb() - baseline})


def run(target, *arguments):
    parent, child = mp.Pipe(duplex=False)
    process = mp.get_context("spawn").Process(target=target, args=(*arguments, child))
    process.start()
    child.close()  # so that recv fails instead of waiting when the worker dies
    try:
        result = parent.recv()
    except EOFError:
        process.join()
        raise RuntimeError(f"{target.__name__}{arguments[:2]} died (exit code "
                           f"{process.exitcode})") from None
    process.join()
    return result


def methods(args):
    """faiss first (the reference of the ratios), when installed; then keras-cmr per backend."""
    import importlib.util

    has_faiss = importlib.util.find_spec("faiss") is not None
    if not has_faiss:
        print("faiss is not installed: ratios and agreement are against the first backend")
    return [("faiss", "-")] * has_faiss + [("keras-cmr", backend) for backend in args.backends]


def topk(args):
    print(f"top-k: {args.queries} queries x {args.gallery} gallery, {args.dim}-d, k={args.k}, "
          f"float32 cosine, compute={args.compute}, best of {args.repeats} searches x "
          f"{args.rounds} interleaved rounds, load average {load_average()}\n")
    print(f"{'method':22} | {'time s':>8} | {'queries/s':>10} | {'x faiss':>7} | "
          f"{'same ids':>8} | {'recall':>7} | {'peak MB':>8}")
    print("-" * 86)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        def run_method(method, backend, round_index):
            out_path = os.path.join(folder, f"{method}-{backend}-{round_index}.npy")
            return {**run(topk_worker, method, backend, args, out_path), "ids_path": out_path}

        best = best_of_rounds(args, run_method)
        reference = None
        for (method, backend), result in best.items():
            ids = np.load(result.pop("ids_path"))
            if reference is None:
                reference, reference_time = ids, result["time"]
            same = float((ids == reference).mean())
            recall = float(np.mean([len(np.intersect1d(a, b)) / args.k
                                    for a, b in zip(ids, reference)]))
            name = method if method == "faiss" else f"{method}/{backend}"
            row = {"method": name, **result, "queries_per_s": args.queries / result["time"],
                   "x_faiss": reference_time / result["time"], "same_ids": same, "recall": recall}
            rows.append(row)
            print(f"{name:22} | {row['time']:8.3f} | {row['queries_per_s']:10.0f} | "
                  f"{row['x_faiss']:7.2f} | {same:8.4f} | {recall:7.4f} | "
                  f"{row['peak_mb']:8.0f}", flush=True)
    print("\ntarget: keras-cmr >= 0.8x faiss' throughput with identical results")
    return rows


def scale(args):
    print(f"scale: {args.queries} queries x {args.gallery} gallery rows on disk "
          f"({args.gallery * args.dim * 4 / 2**30:.2f} GiB in .npy files of {FILE_ROWS} rows), "
          f"{args.dim}-d, k={args.k}, compute={args.compute}, best of {args.rounds} interleaved "
          f"rounds, load average {load_average()}\n")
    print(f"{'method':22} | {'add s':>7} | {'search s':>8} | {'queries/s':>9} | "
          f"{'Mrows/s':>8} | {'eval s':>7} | {f'map@{args.k}':>8} | {'peak MB':>8}")
    print("-" * 96)
    rows = []
    folder = tempfile.mkdtemp(prefix="keras-cmr-gallery-")
    try:
        paths, labels = write_gallery(folder, args.gallery, args.dim)
        best = best_of_rounds(args, lambda method, backend, _: run(
            scale_worker, method, backend, args, paths, labels))
        for (method, backend), result in best.items():
            name = method if method == "faiss" else f"{method}/{backend}"
            row = {"method": name, **result, "queries_per_s": args.queries / result["time"],
                   "rows_per_s": args.queries * args.gallery / result["time"]}
            rows.append(row)
            print(f"{name:22} | {row['add_time']:7.2f} | {row['time']:8.2f} | "
                  f"{row['queries_per_s']:9.1f} | {row['rows_per_s'] / 1e6:8.0f} | "
                  f"{row['evaluate_time']:7.2f} | {row['metrics'][f'map@{args.k}']:8.5f} | "
                  f"{row['peak_mb']:8.0f}", flush=True)
    finally:
        shutil.rmtree(folder)
    print("\nMrows/s: million (query, gallery row) scores per second; peak MB: resident memory "
          "over the process' baseline (faiss holds the gallery in memory, keras-cmr a chunk)")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", choices=("topk", "scale"))
    parser.add_argument("--queries", type=int)
    parser.add_argument("--gallery", type=int)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--compute", default="auto", choices=("auto", "host", "keras"))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json")
    args = parser.parse_args()
    args.backends = [name for name in args.backends.split(",") if name]
    defaults = {"topk": (10_000, 100_000), "scale": (1_000, 1_000_000)}[args.suite]
    args.queries = args.queries or defaults[0]
    args.gallery = args.gallery or defaults[1]
    print("\n".join(header()))
    rows = (topk if args.suite == "topk" else scale)(args)
    if args.json:
        with open(args.json, "w") as stream:
            json.dump({"suite": args.suite, "args": vars(args), "rows": rows}, stream, indent=2)


if __name__ == "__main__":
    main()
