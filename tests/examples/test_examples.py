"""The example scripts run as a user runs them, on the backend under test.

Each script runs in a subprocess (`python examples/NAME.py ...` from the repository root) with
this session's backend in KERAS_BACKEND. Every such process pays the Keras / TensorFlow import,
so there are three of them: train_met.py, then serve_embeddings.py on its output, and
compare_methods.py, which runs in the background meanwhile (most of each process is
single-threaded import and compilation). The missing-model check exits before importing Keras.
switch_backends.py would start one training process per backend, so it is not run here: its
parsing of train_met.py's output, the contract between the two scripts, is checked in-process
on the real output, and so is its option check.
"""

import importlib.util
import os
import re
import subprocess
import sys

import keras
import pytest

from keras_cmr.datasets import load_dataset

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(REPO_ROOT, "examples")
TIMEOUT = 300  # seconds per script; a cold start on a busy machine can take a minute
# Fast, tiny runs: two epochs at most, an 8-wide embedding space.
FAST = ["--epochs", "2", "--embedding-dim", "8", "--quiet"]
FIGURE = r"([01]\.\d{4})"


def start_example(name, args, log_dir):
    """Starts `python examples/NAME ARGS` from the repository root; output goes to files."""
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # JAX on CPU spends most of a two-epoch run compiling; LLVM's lowest optimisation level
    # cuts that several-fold and changes no result that these tests check.
    env.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
    stdout = open(log_dir / f"{name}.out", "w+")
    stderr = open(log_dir / f"{name}.err", "w+")
    process = subprocess.Popen([sys.executable, os.path.join("examples", name), *args],
                               cwd=REPO_ROOT, env=env, stdout=stdout, stderr=stderr, text=True)
    return process, stdout, stderr


def finish_example(started, timeout=TIMEOUT):
    """Waits for a started example; returns its CompletedProcess (output as text)."""
    process, stdout, stderr = started
    try:
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    texts = []
    for stream in (stdout, stderr):
        stream.seek(0)
        texts.append(stream.read())
        stream.close()
    return subprocess.CompletedProcess(process.args, process.returncode, *texts)


def run_example(name, *args, log_dir):
    return finish_example(start_example(name, args, log_dir))


def explain(done):
    return f"exit code {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr[-3000:]}"


def load_example(name):
    """Imports an example as a module (switch_backends.py imports no Keras: cheap)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}",
                                                  os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    """compare_methods.py, started in the background so that it overlaps train -> serve.

    "met" after "source" transfers from that source: two fits in all, no second source.
    """
    started = start_example(
        "compare_methods.py",
        ["--methods", "source,met", "--seeds", "1", "--epochs", "1", "--embedding-dim", "8",
         "--quiet"],
        tmp_path_factory.mktemp("compare_methods"))
    yield started
    process, stdout, stderr = started
    if process.poll() is None:  # its test did not run (deselected): stop it
        process.kill()
        process.wait()
    stdout.close()
    stderr.close()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, comparison):
    """train_met.py's finished run: (completed process, path of the saved target encoder).

    Asks for `comparison` only to start that process first, alongside this one.
    """
    folder = tmp_path_factory.mktemp("train_met")
    path = folder / "met_target.keras"
    done = run_example("train_met.py", *FAST, "--patience", "1", "--output", str(path),
                       log_dir=folder)
    return done, path


def test_train_met_prints_both_stages_and_test_figures(trained):
    done, path = trained
    assert done.returncode == 0, explain(done)
    out = done.stdout
    assert f"backend {keras.backend.backend()}" in out
    assert "stage 1, source (class-wise): 2 epoch(s)" in out
    assert "stage 2, MET transfer (soft contrastive): 2 epoch(s)" in out
    for name in (r"source \(stage 1\)", "MET target"):
        row = re.search(rf"^{name}\s+{FIGURE}\s+{FIGURE}\s+{FIGURE}$", out, re.MULTILINE)
        assert row, f"no test-figure row for {name!r}:\n{out}"
        i2t, t2i, avg = (float(value) for value in row.groups())
        assert 0.0 < min(i2t, t2i, avg) and max(i2t, t2i, avg) <= 1.0
        assert avg == pytest.approx((i2t + t2i) / 2, abs=1e-4)
    assert path.is_file() and f"saved the target encoder to {path}" in out


def test_serve_answers_image_queries_with_the_saved_encoder(trained):
    train, path = trained
    assert train.returncode == 0, explain(train)
    pairs = load_dataset("digits").test.num_pairs
    done = run_example("serve_embeddings.py", "--model", str(path), "--queries", "2",
                       log_dir=path.parent)
    assert done.returncode == 0, explain(done)
    out = done.stdout
    assert f"gallery: {pairs} test texts -> embeddings ({pairs}, 8)" in out
    assert "queries: first 2 test images -> embeddings (2, 8)" in out
    blocks = re.split(r"^image \d+ \(class ", out, flags=re.MULTILINE)[1:]
    assert len(blocks) == 2, out
    neighbour = re.compile(r"^  (\d)\. text +(\d+)  similarity ([+-]\d\.\d{4})  class .+ "
                           r"(match|no match)$", re.MULTILINE)
    for block in blocks:
        rows = neighbour.findall(block)
        assert [int(rank) for rank, *_ in rows] == [1, 2, 3, 4, 5], block
        similarities = [float(similarity) for _, _, similarity, _ in rows]
        assert all(-1.0 <= value <= 1.0 for value in similarities)
        assert similarities == sorted(similarities, reverse=True)
    # The served encoder reproduces the figures the training run measured before saving.
    served = re.search(rf"image->text mAP@all over all {pairs} test images: {FIGURE}", out)
    trained_row = re.search(rf"^MET target\s+{FIGURE}", train.stdout, re.MULTILINE)
    assert served and trained_row, out
    assert float(served.group(1)) == pytest.approx(float(trained_row.group(1)), abs=2e-4)


def test_serve_without_a_model_file_says_to_train_first(tmp_path):
    missing = tmp_path / "nowhere.keras"
    done = run_example("serve_embeddings.py", "--model", str(missing), log_dir=tmp_path)
    assert done.returncode == 2, explain(done)
    assert "no model file" in done.stderr and str(missing) in done.stderr
    assert "examples/train_met.py" in done.stderr and "Traceback" not in done.stderr


def test_compare_methods_prints_runs_and_table(comparison):
    done = finish_example(comparison)
    assert done.returncode == 0, explain(done)
    out = done.stdout
    for method in ("source", "met"):
        run = re.search(rf"^seed 0 {method} +test I2T {FIGURE} T2I {FIGURE} avg {FIGURE} "
                        r"\(1 epochs", out, re.MULTILINE)
        assert run, f"no run line for {method}:\n{out}"
        # One seed measures no spread, so the table shows none.
        row = re.search(rf"^{method} +1 +{FIGURE} +{FIGURE} +{FIGURE} +{FIGURE}$", out,
                        re.MULTILINE)
        assert row, f"no table row for {method}:\n{out}"
        assert row.group(3) == run.group(3)  # one seed: the mean is that run's avg mAP
    assert "mean +- std over 1 seed(s)" in out


def test_switch_backends_reads_train_met_output(trained):
    done, _ = trained
    assert done.returncode == 0, explain(done)
    switch = load_example("switch_backends")
    figures = switch.parse_figures(done.stdout)
    assert set(figures) == {"source (stage 1)", "MET target"}
    for i2t, t2i, avg in figures.values():
        assert 0.0 < avg <= 1.0 and avg == pytest.approx((i2t + t2i) / 2, abs=1e-4)
    assert switch.parse_args(["--backends", keras.backend.backend()]).backends == [
        keras.backend.backend()]
    with pytest.raises(SystemExit) as raised:
        switch.parse_args(["--backends", "theano"])
    assert raised.value.code == 2
