"""The suite runner: one pytest process per backend, run side by side, failures summed."""

import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RUNNER = os.path.join(REPO_ROOT, "tests", "run_all_backends.py")
CHECKS = """
import os

def test_backend_is_set():
    assert os.environ["KERAS_BACKEND"] in ("jax", "torch")

def test_fails_on_torch():
    assert os.environ["KERAS_BACKEND"] != "torch"
"""


def run(*args):
    return subprocess.run([sys.executable, RUNNER, *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_each_backend_runs_in_its_own_process_and_failures_are_summed(tmp_path, jobs):
    checks = tmp_path / "test_checks.py"
    checks.write_text(CHECKS)
    result = run("--backends", "jax,torch", "--jobs", jobs, "-q", "--rootdir", str(tmp_path),
                 str(checks))
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    # Each backend's report is printed in one piece, under its own header.
    for backend, summary in (("jax", "2 passed"), ("torch", "1 failed, 1 passed")):
        start = out.index(f"\n===== KERAS_BACKEND={backend}:")
        ends = [out.find(mark, start + 1) for mark in ("\n===== KERAS_BACKEND=", "\n===== summary")]
        report = out[start:min(end for end in ends if end > 0)]
        assert f"{summary} in" in report, report
    assert "jax: ok" in out and "torch: FAILED (exit 1)" in out
    assert out.strip().endswith("all backends: 3 passed, 1 failed")


def test_bad_arguments_are_refused():
    assert "--jobs must be at least 1, got 0" in run("--jobs", "0").stderr
    assert "unknown backend(s) ['mxnet']" in run("--backends", "jax,mxnet").stderr
