"""The suite runner: pytest processes per backend (and shard), run side by side, failures
summed; the shard plugin that deals the test files."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SPEC = importlib.util.spec_from_file_location(
    "shard_selection", os.path.join(REPO_ROOT, "tests", "shard_selection.py"))
shard_selection = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(shard_selection)
deal_files, parse_shard = shard_selection.deal_files, shard_selection.parse_shard
_RUNNER_SPEC = importlib.util.spec_from_file_location(
    "run_all_backends", os.path.join(REPO_ROOT, "tests", "run_all_backends.py"))
runner = importlib.util.module_from_spec(_RUNNER_SPEC)
_RUNNER_SPEC.loader.exec_module(runner)

RUNNER = os.path.join(REPO_ROOT, "tests", "run_all_backends.py")
CHECKS = """
import os

def test_backend_is_set():
    assert os.environ["KERAS_BACKEND"] in ("jax", "torch")

def test_fails_on_torch():
    assert os.environ["KERAS_BACKEND"] != "torch"
"""


def run(*args, env=None):
    return subprocess.run([sys.executable, RUNNER, *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120, env=env)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_each_backend_runs_in_its_own_process_and_failures_are_summed(tmp_path, jobs):
    checks = tmp_path / "test_checks.py"
    checks.write_text(CHECKS)
    result = run("--backends", "jax,torch", "--jobs", jobs, "--shards", "1", "-q",
                 "--rootdir", str(tmp_path), str(checks))
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
    assert "--shards must be at least 1, got 0" in run("--shards", "0").stderr
    assert "unknown backend(s) ['mxnet']" in run("--backends", "jax,mxnet").stderr


SHARDED_MODULE = """
import os

# Printed when the module is imported: only the shard that runs the file imports it.
print("imported", "{name}", os.environ["KERAS_CMR_TEST_SHARD"])
"""

SHARDED = """
def test_{name}_{index}():
    # Each process gets its share of the cores for its thread pools.
    assert os.environ["OMP_NUM_THREADS"] == os.environ["TF_NUM_INTRAOP_THREADS"] == "{threads}"
    assert os.environ["KERAS_CMR_TEST_SHARD"] in ("0/2", "1/2")
    print("ran", "{name}", {index}, os.environ["KERAS_CMR_TEST_SHARD"])
"""


def test_shards_run_every_file_once_with_a_share_of_the_cores(tmp_path):
    threads = str(max(1, (os.cpu_count() or 1) // 2))
    for name, count in (("small", 1), ("large", 3), ("medium", 2)):
        text = SHARDED_MODULE.format(name=name) + "".join(
            SHARDED.format(name=name, index=i, threads=threads) for i in range(count))
        (tmp_path / f"test_{name}.py").write_text(text)
    env = {key: value for key, value in os.environ.items()
           if key not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")}
    result = run("--backends", "jax", "--jobs", "2", "--shards", "2", "-q", "-s",
                 "--rootdir", str(tmp_path), str(tmp_path), env=env)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    ran = sorted(re.findall(r"ran (\w+) (\d) (\d/2)", out))
    # Largest file first: "large" alone in one shard, "medium" and "small" in the other.
    shard_of = {name: shard for name, _, shard in ran}
    assert len(ran) == 6 and shard_of["medium"] == shard_of["small"] != shard_of["large"]
    assert sorted(re.findall(r"imported (\w+) (\d/2)", out)) == sorted(shard_of.items())
    assert "jax 1/2: ok" in out and "jax 2/2: ok" in out
    assert out.strip().endswith("all backends: 6 passed, 0 failed")


def test_files_are_dealt_into_shards_of_similar_size(tmp_path):
    sizes = [900, 500, 400, 300, 200, 100, 100]
    paths = []
    for number, size in enumerate(sizes):
        path = tmp_path / f"test_{number}.py"
        path.write_text("#" * size)
        paths.append(str(path))
    shards = deal_files(paths + paths[:2], 2)  # a file named twice is dealt once
    assert sorted(shards) == sorted(paths)
    totals = [sum(size for path, size in zip(paths, sizes) if shards[path] == shard)
              for shard in (0, 1)]
    # Largest first, each to the lighter shard (the first on a tie):
    # 900 + 300 + 100 | 500 + 400 + 200 + 100.
    assert totals == [1300, 1200]
    assert deal_files(list(reversed(paths)), 2) == shards
    assert set(deal_files(paths, 3).values()) == {0, 1, 2}


def test_a_shard_is_read_as_index_of_count():
    assert parse_shard("1/3") == (1, 3)
    for text in ("3/3", "-1/2", "a/2", "2"):
        with pytest.raises(ValueError, match="KERAS_CMR_TEST_SHARD"):
            parse_shard(text)


def test_files_are_dealt_by_their_measured_seconds_and_the_rest_by_size(tmp_path):
    paths = []
    for number, size in enumerate([100, 100, 400, 200]):
        path = tmp_path / f"test_{number}.py"
        path.write_text("#" * size)
        paths.append(str(path))
    # Measured: 0 and 1 (200 bytes in 10 s: 0.05 s a byte), so 2 weighs 20 s and 3 10 s.
    shards = deal_files(paths, 2, {paths[0]: 9.0, paths[1]: 1.0})
    # Heaviest first: 2 (20) | 3 (10), 0 (9), 1 (1) -> 20 against 20.
    assert shards[paths[2]] != shards[paths[3]] == shards[paths[0]] == shards[paths[1]]
    # Bytes alone would put 2 (400) against 3, 0 and 1 (400); measured seconds put 0 alone.
    shards = deal_files(paths, 2, {paths[0]: 30.0, paths[1]: 1.0, paths[2]: 1.0,
                                   paths[3]: 1.0})
    assert shards[paths[0]] != shards[paths[1]] == shards[paths[2]] == shards[paths[3]]


def test_measured_seconds_are_recorded_per_backend_and_order_the_backends(tmp_path):
    jobs = {}
    for (backend, shard), files in {("jax", 0): {"tests/a.py": 3.04}, ("jax", 1): {
            "tests/b.py": 5.0}, ("torch", 0): {"tests/a.py": 1.0}}.items():
        jobs[backend, shard] = str(tmp_path / f"{backend}-{shard}.json")
        with open(jobs[backend, shard], "w") as stream:
            json.dump(files, stream)
    path = str(tmp_path / "file_seconds.json")
    with open(path, "w") as stream:
        json.dump({"tensorflow": {"tests/a.py": 2.0}, "jax": {"tests/old.py": 1.0}}, stream)
    runner.record_seconds(["jax", "torch"], jobs, path)
    with open(path) as stream:
        recorded = json.load(stream)
    assert recorded == {"jax": {"tests/a.py": 3.0, "tests/b.py": 5.0},
                        "tensorflow": {"tests/a.py": 2.0}, "torch": {"tests/a.py": 1.0}}
    assert shard_selection.measured_seconds("jax", path) == recorded["jax"]
    assert shard_selection.measured_seconds("jax", str(tmp_path / "none.json")) == {}
    assert runner.backend_order(["tensorflow", "jax", "torch"], path) == [
        "jax", "tensorflow", "torch"]
    assert runner.backend_order(["torch", "jax"], str(tmp_path / "none.json")) == [
        "torch", "jax"]


def test_the_plugin_writes_the_seconds_of_each_file_it_ran(tmp_path):
    (tmp_path / "test_slow.py").write_text(
        "import time\n\ndef test_a():\n    time.sleep(0.3)\n\ndef test_b():\n"
        "    time.sleep(0.2)\n")
    (tmp_path / "test_fast.py").write_text("def test_c():\n    pass\n")
    path = tmp_path / "seconds.json"
    env = dict(os.environ, KERAS_CMR_TEST_SECONDS=str(path), PYTHONPATH=os.pathsep.join(
        filter(None, [os.path.join(REPO_ROOT, "tests"), os.environ.get("PYTHONPATH")])))
    env.pop("KERAS_CMR_TEST_SHARD", None)
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "shard_selection", "-p",
         "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    seconds = json.loads(path.read_text())
    assert sorted(seconds) == ["test_fast.py", "test_slow.py"]
    assert 0.5 <= seconds["test_slow.py"] < 5.0 and seconds["test_fast.py"] < 0.5
