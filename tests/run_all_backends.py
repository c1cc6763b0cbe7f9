"""Run the test suite once per Keras backend, each in its own process.

Usage: python tests/run_all_backends.py [--backends tensorflow,jax,torch] [--jobs N]
                                        [pytest args...]

Each backend gets a fresh KERAS_HOME (so the user's ~/.keras/keras.json is never read or
written) and its own pytest process, since Keras fixes its backend at import time. `--jobs`
backends run at once (default 2: most tests are single-threaded Python, so two suites share two
cores well); with more than one, each backend's output is printed whole when it finishes. The
run fails if any backend fails; the last line sums the tests of all backends.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

BACKENDS = ("tensorflow", "jax", "torch")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COUNT_PATTERN = re.compile(r"(\d+) (passed|failed|errors?|skipped)")


def run_backend(backend, pytest_args, stream):
    """Runs pytest on `backend`; its output goes to stdout as it comes (`stream`) or, else,
    whole at the end. Returns (exit code, last non-empty line, seconds)."""
    with tempfile.TemporaryDirectory(prefix=f"keras-home-{backend}-") as keras_home:
        env = dict(os.environ, KERAS_BACKEND=backend, KERAS_HOME=keras_home)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *pytest_args]
        header = f"\n===== KERAS_BACKEND={backend}: {' '.join(command)}"
        print(header if stream else f"started {backend}", flush=True)
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
    parser.add_argument("--jobs", type=int, default=2, help="backends run at once")
    args, pytest_args = parser.parse_known_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; choose from {list(BACKENDS)}")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    if not pytest_args:
        pytest_args = ["-q", "tests"]

    jobs = min(args.jobs, len(backends))
    with ThreadPoolExecutor(jobs) as pool:
        futures = {b: pool.submit(run_backend, b, pytest_args, jobs == 1) for b in backends}
        results = {b: future.result() for b, future in futures.items()}

    totals = {"passed": 0, "failed": 0}
    print("\n===== summary per backend")
    for backend, (returncode, last_line, seconds) in results.items():
        status = "ok" if returncode == 0 else f"FAILED (exit {returncode})"
        print(f"{backend:>10}: {status:<18} {seconds:7.1f} s  {last_line}")
        for number, kind in COUNT_PATTERN.findall(last_line):
            if kind == "passed":
                totals["passed"] += int(number)
            elif kind in ("failed", "error", "errors"):
                totals["failed"] += int(number)
        if returncode != 0 and not COUNT_PATTERN.search(last_line):
            totals["failed"] += 1  # a backend that crashed before reporting still fails
    print(f"all backends: {totals['passed']} passed, {totals['failed']} failed")
    return 0 if all(r[0] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
