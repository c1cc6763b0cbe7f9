"""Run the test suite once per Keras backend, each backend in its own processes.

Usage: python tests/run_all_backends.py [--backends tensorflow,jax,torch] [--jobs N]
                                        [--shards N] [--record-seconds] [pytest args...]

Each backend gets a fresh KERAS_HOME (so the user's ~/.keras/keras.json is never read or
written) and its own pytest processes, since Keras fixes its backend at import time. Each
backend's test files are dealt into `--shards` shards of similar size (`shard_selection.py`;
default 2), and `--jobs` of these (backend, shard) processes run at once (default 2, the cores
of CI's machine), the backend with the most measured seconds first, so that no core idles
while one backend finishes. `--record-seconds` measures each test file's seconds on each
backend it ran and writes them to tests/file_seconds.json, which the dealing reads.
Each process gets its share of the cores for its thread pools (OMP_NUM_THREADS,
TF_NUM_INTRAOP_THREADS: cores // jobs, unless set already): two processes that each spin up
a pool for every core only slow each other down. With more than one job, each process's
output is printed whole when it ends. The run fails if any process fails; the last line sums
the tests of all backends.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

BACKENDS = ("tensorflow", "jax", "torch")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
COUNT_PATTERN = re.compile(r"(\d+) (passed|failed|errors?|skipped)")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")
SECONDS_FILE = os.path.join(TESTS, "file_seconds.json")


def job_environment(backend, keras_home, shard, shards, threads, seconds_path=None):
    """The environment of one (backend, shard) pytest process; with `seconds_path`, the
    process writes its files' seconds there."""
    env = dict(os.environ, KERAS_BACKEND=backend, KERAS_HOME=keras_home)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in THREAD_VARIABLES:
        env.setdefault(name, str(threads))
    if shards > 1:
        env["KERAS_CMR_TEST_SHARD"] = f"{shard}/{shards}"
    if seconds_path:
        env["KERAS_CMR_TEST_SECONDS"] = seconds_path
    if shards > 1 or seconds_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [TESTS, env.get("PYTHONPATH")]))
    return env


def backend_order(backends, path=SECONDS_FILE):
    """`backends`, the one with the most measured seconds in `path` first (unmeasured ones
    last, in the given order)."""
    measured = {}
    if os.path.exists(path):
        with open(path) as stream:
            measured = json.load(stream)
    return sorted(backends, key=lambda b: -sum(measured.get(b, {}).values()))


def record_seconds(backends, seconds_paths, path=SECONDS_FILE):
    """Writes {backend: {file: seconds}} of the jobs' files (`seconds_paths`: {(backend,
    shard): JSON path}) to `path`, keeping the other backends' entries."""
    recorded = {}
    if os.path.exists(path):
        with open(path) as stream:
            recorded = json.load(stream)
    for backend in backends:
        files = {}
        for (name, _), job_path in seconds_paths.items():
            if name == backend and os.path.exists(job_path):
                with open(job_path) as stream:
                    files.update(json.load(stream))
        recorded[backend] = {name: round(value, 1) for name, value in sorted(files.items())}
    with open(path + ".tmp", "w") as stream:
        json.dump(recorded, stream, indent=1, sort_keys=True)
        stream.write("\n")
    os.replace(path + ".tmp", path)


def run_job(backend, shard, shards, threads, pytest_args, stream, seconds_path=None):
    """Runs pytest on `backend` (its shard `shard` of `shards`); its output goes to stdout as
    it comes (`stream`) or, else, whole at the end. Returns (exit code, last non-empty line,
    seconds)."""
    with tempfile.TemporaryDirectory(prefix=f"keras-home-{backend}-") as keras_home:
        env = job_environment(backend, keras_home, shard, shards, threads, seconds_path)
        plugin = ["-p", "shard_selection"] if shards > 1 or seconds_path else []
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *plugin,
                   *pytest_args]
        name = backend if shards == 1 else f"{backend} shard {shard + 1}/{shards}"
        header = f"\n===== KERAS_BACKEND={backend}" + (
            f" (shard {shard + 1}/{shards})" if shards > 1 else "") + f": {' '.join(command)}"
        print(header if stream else f"started {name}", flush=True)
        start = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )
        lines = []
        for line in process.stdout:
            if stream:
                sys.stdout.write(line)
            lines.append(line)
        returncode = process.wait()
        seconds = time.perf_counter() - start
        if not stream:
            sys.stdout.write("".join([header + "\n", *lines]))
            sys.stdout.flush()
        last_line = next((line.strip() for line in reversed(lines) if line.strip()), "")
        return returncode, last_line, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--jobs", type=int, default=2, help="pytest processes run at once")
    parser.add_argument("--shards", type=int, default=2,
                        help="pytest processes per backend, each on its share of the files")
    parser.add_argument("--record-seconds", action="store_true",
                        help="write each test file's seconds per backend to "
                             "tests/file_seconds.json")
    args, pytest_args = parser.parse_known_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; choose from {list(BACKENDS)}")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    if args.shards < 1:
        parser.error(f"--shards must be at least 1, got {args.shards}")
    if not pytest_args:
        pytest_args = ["-q", "tests"]

    runs = [(backend, shard) for backend in backend_order(backends)
            for shard in range(args.shards)]
    jobs = min(args.jobs, len(runs))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with tempfile.TemporaryDirectory(prefix="test-seconds-") as folder:
        seconds_paths = {run: os.path.join(folder, "{}-{}.json".format(*run)) for run in runs
                         } if args.record_seconds else {}
        with ThreadPoolExecutor(jobs) as pool:
            futures = {run: pool.submit(run_job, *run, args.shards, threads, pytest_args,
                                        jobs == 1, seconds_paths.get(run)) for run in runs}
            results = {run: future.result() for run, future in futures.items()}
        if args.record_seconds:
            record_seconds(backends, seconds_paths)

    totals = {"passed": 0, "failed": 0}
    print("\n===== summary per backend" + (" and shard" if args.shards > 1 else ""))
    for (backend, shard), (returncode, last_line, seconds) in results.items():
        status = "ok" if returncode == 0 else f"FAILED (exit {returncode})"
        name = backend if args.shards == 1 else f"{backend} {shard + 1}/{args.shards}"
        print(f"{name:>14}: {status:<18} {seconds:7.1f} s  {last_line}")
        for number, kind in COUNT_PATTERN.findall(last_line):
            if kind == "passed":
                totals["passed"] += int(number)
            elif kind in ("failed", "error", "errors"):
                totals["failed"] += int(number)
        if returncode != 0 and not COUNT_PATTERN.search(last_line):
            totals["failed"] += 1  # a process that crashed before reporting still fails
    print(f"all backends: {totals['passed']} passed, {totals['failed']} failed")
    return 0 if all(r[0] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
