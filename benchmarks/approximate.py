"""Benchmark: approximate search (faiss IVF, HNSW) against exact search (faiss flat).

Run from the repository root:

    python benchmarks/approximate.py [--gallery 1000000] [--hnsw-gallery 200000] [--dim 256]
        [--queries 1000] [--clusters 1000] [--noise 1] [--k 10] [--nlist 1024] [--nprobe 8,16,32]
        [--ivf-types ivf] [--exact faiss] [--hnsw-m 16] [--ef-construction 80]
        [--ef-search 32,64,128] [--threads 2] [--json PATH] [--folder DIR]

The gallery: `--gallery` float32 rows in `--clusters` Gaussian clusters (centres N(0, I),
rows centre + noise * N(0, I)), written chunk by chunk to a `.npy` file in a temporary folder
and added with `FaissIndex.add_npy` (read 65,536 rows at a time); queries drawn from the same
clusters. For
each gallery size (`--gallery`, and `--hnsw-gallery`, its first rows, where HNSW is built too:
building HNSW over 10^6 x 256 takes far longer than this benchmark's budget on 2 cores; 0:
no HNSW), the IVF indexes of `--ivf-types` ("ivf", "ivf_sq8") are built, and the exact
reference is `--exact`: "faiss" (the flat `FaissIndex`, the gallery in memory) or "disk"
(`BruteForceIndex.add_npy` on numpy's BLAS: the file read chunk by chunk at each search, for
galleries too large for memory):

- build: seconds to add the gallery (IVF: training on 64 * nlist sampled rows included);
- index MB: the size of the saved `index.faiss`, what faiss holds in memory (for the exact
  search on disk: the size of the `.npy` file it reads);
- queries/s: `--queries` queries searched at once for the top k, best of 2 runs (1 for the
  exact search on disk);
- speed-up: queries/s over the flat index's on the same gallery, in the same run;
- recall@k: the mean fraction of each query's exact top k (the flat index's) found.

Peak resident memory of the process is printed at the end. Timings are wall clock on a machine
shared with other jobs: compare the ratios within one run.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_cmr.retrieval import BruteForceIndex, FaissIndex  # noqa: E402
from keras_cmr.retrieval.approximate import recall_against_exact  # noqa: E402
from keras_cmr.retrieval.storage import write_npy_chunks  # noqa: E402

SEED = 0
CHUNK = 65_536


def clustered_rows(rng, centres, count, noise):
    labels = rng.integers(0, len(centres), size=count)
    spread = noise * rng.standard_normal((count, centres.shape[1]), dtype=np.float32)
    return (centres[labels] + spread).astype(np.float32)


def write_gallery(path, rng, centres, count, noise):
    chunks = (clustered_rows(rng, centres, min(CHUNK, count - start), noise)
              for start in range(0, count, CHUNK))
    write_npy_chunks(path, chunks, (count, centres.shape[1]))


def timed_search(index, queries, k):
    best, positions = float("inf"), None
    # Once for the exact search on disk: minutes at 10^7 rows.
    for _ in range(1 if isinstance(index, BruteForceIndex) else 2):
        start = time.perf_counter()
        _, positions = index.search_positions(queries, k, verbose=False)
        best = min(best, time.perf_counter() - start)
    return best, positions


def measure(name, index, path, queries, k, folder, exact_positions, knobs):
    start = time.perf_counter()
    index.add_npy(path)
    build = time.perf_counter() - start
    if isinstance(index, BruteForceIndex):  # left on disk
        size_mb = os.path.getsize(path) / 2**20
    else:
        saved = os.path.join(folder, "index")
        index.save(saved)
        size_mb = os.path.getsize(os.path.join(saved, "index.faiss")) / 2**20
        shutil.rmtree(saved)
    rows = []
    for knob in knobs or [None]:
        if knob is not None:
            index.set_search(**knob)
        seconds, positions = timed_search(index, queries, k)
        recall = 1.0 if exact_positions is None else recall_against_exact(positions,
                                                                           exact_positions)
        label = name + ("" if knob is None else " " + " ".join(f"{key}={value}"
                                                              for key, value in knob.items()))
        rows.append({"index": label, "build_s": build, "index_mb": size_mb,
                     "qps": len(queries) / seconds, "recall": recall})
        print(f"  {label:<34} build {build:7.1f} s  {size_mb:7.0f} MB  "
              f"{len(queries) / seconds:9.3g} q/s  recall@{k} {recall:.4f}", flush=True)
    return rows, positions


def run_size(args, size, hnsw, gallery_path, queries, folder):
    print(f"gallery {size} x {args.dim}:", flush=True)
    path = gallery_path
    if size != args.gallery:  # the first `size` rows, as their own file
        path = os.path.join(folder, f"gallery_{size}.npy")
        source = np.load(gallery_path, mmap_mode="r")
        write_npy_chunks(path, (np.asarray(source[start:min(start + CHUNK, size)])
                                for start in range(0, size, CHUNK)), (size, args.dim))
    if args.exact == "disk":
        exact_index = BruteForceIndex(compute="host", cache_bytes=0)
        name = "exact, read from disk"
    else:
        exact_index, name = FaissIndex(), "flat"
    rows, exact = measure(name, exact_index, path, queries, args.k, folder, None, None)
    del exact_index
    for kind in args.ivf_types:
        ivf = FaissIndex(index_type=kind, nlist=args.nlist)
        rows += measure(f"{kind} nlist={args.nlist}", ivf, path, queries, args.k, folder,
                        exact, [{"nprobe": n} for n in args.nprobe])[0]
        del ivf
    if hnsw:
        index = FaissIndex(index_type="hnsw", hnsw_m=args.hnsw_m,
                           ef_construction=args.ef_construction)
        rows += measure(f"hnsw M={args.hnsw_m} efC={args.ef_construction}", index, path,
                        queries, args.k, folder, exact,
                        [{"ef_search": e} for e in args.ef_search])[0]
    flat_qps = rows[0]["qps"]
    for row in rows:
        row.update(gallery=size, speedup=row["qps"] / flat_qps)
    return rows


def integers(text):
    return [int(value) for value in text.split(",")]


def ivf_types(text):
    kinds = text.split(",")
    unknown = set(kinds) - {"ivf", "ivf_sq8"}
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown IVF index types {sorted(unknown)}")
    return kinds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", type=int, default=1_000_000)
    parser.add_argument("--hnsw-gallery", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--noise", type=float, default=1.0)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--nprobe", type=integers, default=[8, 16, 32])
    parser.add_argument("--ivf-types", type=ivf_types, default=["ivf"])
    parser.add_argument("--exact", choices=("faiss", "disk"), default="faiss")
    parser.add_argument("--hnsw-m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=80)
    parser.add_argument("--ef-search", type=integers, default=[32, 64, 128])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    parser.add_argument("--folder", help="where the temporary gallery goes (default: $TMPDIR)")
    args = parser.parse_args()
    import faiss

    faiss.omp_set_num_threads(args.threads)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs, faiss {faiss.__version__}, numpy {np.__version__}, "
          f"{args.threads} faiss threads, load average {os.getloadavg()[0]:.1f}", flush=True)
    imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"resident memory after the imports: {imported:.0f} MB", flush=True)
    rng = np.random.default_rng(SEED)
    centres = rng.standard_normal((args.clusters, args.dim), dtype=np.float32)
    queries = clustered_rows(rng, centres, args.queries, args.noise)
    results = []
    with tempfile.TemporaryDirectory(prefix="approximate-bench-", dir=args.folder) as folder:
        gallery_path = os.path.join(folder, "gallery.npy")
        start = time.perf_counter()
        write_gallery(gallery_path, rng, centres, args.gallery, args.noise)
        print(f"gallery written in {time.perf_counter() - start:.1f} s", flush=True)
        sizes = {args.gallery, min(args.hnsw_gallery, args.gallery)} - {0}
        for size in sorted(sizes, reverse=True):
            results += run_size(args, size, size <= args.hnsw_gallery, gallery_path, queries,
                                folder)
    print(f"\n| gallery | index | build s | index MB | queries/s | x flat | recall@{args.k} |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in results:
        qps = f"{row['qps']:.0f}" if row["qps"] >= 100 else f"{row['qps']:.3g}"
        print(f"| {row['gallery']:,} | {row['index']} | {row['build_s']:.1f} | "
              f"{row['index_mb']:.0f} | {qps} | {row['speedup']:.1f} | "
              f"{row['recall']:.3f} |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak resident memory of the process: {peak:.0f} MB; load average "
          f"{' '.join(f'{load:.1f}' for load in os.getloadavg())}")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump({"args": vars(args), "results": results, "peak_mb": peak}, stream,
                      indent=1)


if __name__ == "__main__":
    main()
