"""`keras-cmr`'s start-up: help without a framework, a plain `import keras_cmr` that registers
every class, and the frameworks' C++ start-up lines held back while they are imported.

That a real `keras-cmr train` keeps the C++ start-up lines off stderr is checked on the
subprocess runs of tests/cli/test_resume.py (one training subprocess serves both).
"""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_cmr_cli
from keras_cmr import losses, methods, saving
from keras_cmr.cli import quiet
from keras_cmr.cli.main import COMMANDS, main
from keras_cmr.datasets import CrossModalDataset, CrossModalSplit, save_npz
from keras_cmr.models import CrossModalEncoder, PairwiseModel

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FRAMEWORKS = ("tensorflow", "jax", "torch", "keras")

# Runs the console script's entry point on each argv given as JSON; prints, for each, its
# exit status and what it printed, and the framework modules the process imported.
NO_FRAMEWORK_SCRIPT = """
import contextlib, io, json, sys
import keras_cmr_cli
runs = {}
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = keras_cmr_cli.main(argv)
        except SystemExit as exit:
            status = exit.code
    runs[" ".join(argv)] = {"status": status, "out": out.getvalue(), "err": err.getvalue()}
loaded = sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[2].split(",")))
print(json.dumps({"runs": runs, "frameworks": loaded}))
"""

# A plain `import keras_cmr`, then a saved model loaded with Keras' own loader; then every
# module of the package imported: the registered names before and after.
IMPORT_SCRIPT = """
import importlib, json, pkgutil, sys
import keras_cmr
import keras

def registered():
    return sorted(name for name in keras.saving.get_custom_objects()
                  if name.startswith("keras_cmr>"))

after_import = registered()
model = keras.saving.load_model(sys.argv[1])
for module in pkgutil.walk_packages(keras_cmr.__path__, "keras_cmr."):
    importlib.import_module(module.name)
print(json.dumps({"after_import": after_import, "everything": registered(),
                  "model": type(model).__name__, "loss": type(model.pair_loss).__name__}))
"""

# The console script running a command: the package's __init__ runs, classes load.
COMMAND_SCRIPT = """
import sys, keras_cmr_cli
sys.exit(keras_cmr_cli.main(sys.argv[1:]))
"""


def child_environment(**changes):
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, env.get("PYTHONPATH")]))
    return {**env, **changes}


def run_child(*argv):
    child = subprocess.run([sys.executable, "-c", *argv], capture_output=True, text=True,
                           env=child_environment(), cwd=REPO_ROOT, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    return child


def test_help_of_the_command_and_of_each_subcommand_imports_no_framework():
    commands = [["--help"]] + [[name, "--help"] for name in
                               ("train", "evaluate", "compare", "plot", "extract-features",
                                "index", "search")]
    assert len(commands) == len(COMMANDS) + 1
    child = run_child(NO_FRAMEWORK_SCRIPT, json.dumps(commands), ",".join(FRAMEWORKS))
    report = json.loads(child.stdout.splitlines()[-1])
    assert report["frameworks"] == []
    assert {run["status"] for run in report["runs"].values()} == {0}
    assert "--verbose" in report["runs"]["--help"]["out"]
    for command in ("train --help", "compare --help"):
        for name in methods.available():
            line = f"  {name} +{re.escape(methods.get(name).description)}$"
            assert re.search(line, report["runs"][command]["out"], re.M), (command, name)


def test_an_output_that_holds_a_result_is_refused_before_any_framework_import(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "figures.json").write_text("{}")
    (tmp_path / "compare.json").write_text("{}")
    commands = [["train", "--output", str(tmp_path / "run")],
                ["compare", "--json", str(tmp_path / "compare.json")],
                ["plot", "results.json", "--out", str(tmp_path / "compare.json")]]
    child = run_child(NO_FRAMEWORK_SCRIPT, json.dumps(commands), ",".join(FRAMEWORKS))
    report = json.loads(child.stdout.splitlines()[-1])
    assert report["frameworks"] == []
    runs = [report["runs"][" ".join(argv)] for argv in commands]
    assert [run["status"] for run in runs] == [2, 2, 2]
    assert runs[0]["err"].startswith("keras-cmr train: error: --output ")
    assert "already holds figures.json: pass --overwrite" in runs[0]["err"]
    assert "exists: continue that comparison with --resume" in runs[1]["err"]
    assert "is a file, not a folder" in runs[2]["err"]
    assert all(len(run["err"].splitlines()) == 1 for run in runs)


def pairwise_model(path):
    """Trains a small PairwiseModel for one epoch and saves it at `path`."""
    rng = np.random.default_rng(0)
    model = PairwiseModel(CrossModalEncoder.projection(4, hidden_dims=(8,)),
                          losses.ContrastiveLoss())
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit({"image": rng.normal(size=(20, 6)), "text": rng.normal(size=(20, 5))},
              np.arange(20) % 2, batch_size=10, epochs=1, verbose=0)
    saving.save_model(model, str(path))
    return model


def test_a_plain_import_registers_every_class_and_keras_loads_saved_models(tmp_path):
    pairwise_model(tmp_path / "pairwise.keras")
    child = run_child(IMPORT_SCRIPT, str(tmp_path / "pairwise.keras"))
    report = json.loads(child.stdout.splitlines()[-1])
    assert report["after_import"] == report["everything"]
    assert "keras_cmr>CrossModalEncoder" in report["after_import"]
    assert "keras_cmr>ContrastiveLoss" in report["after_import"]
    assert report["model"] == "PairwiseModel" and report["loss"] == "ContrastiveLoss"


def small_data(path):
    rng = np.random.default_rng(0)

    def split(rows, name):
        return CrossModalSplit(rng.normal(size=(rows, 6)), rng.normal(size=(rows, 5)),
                               np.arange(rows) % 2, name=name)

    save_npz(CrossModalDataset(train=split(10, "train"), test=split(8, "test"), num_classes=2,
                               name="pairs"), str(path))


def test_the_console_script_runs_a_command_without_start_up_lines(tmp_path):
    pairwise_model(tmp_path / "pairwise.keras")
    small_data(tmp_path / "pairs.npz")
    child = run_child(COMMAND_SCRIPT, "evaluate", str(tmp_path / "pairwise.keras"), "--data",
                      str(tmp_path / "pairs.npz"))
    assert "on pairs test (8 pairs)" in child.stdout and "avg_map" in child.stdout
    for line in child.stderr.splitlines():
        assert not quiet.START_UP_LINE.match(line), line


def test_the_console_script_works_where_keras_cmr_is_imported_already(capsys):
    assert keras_cmr_cli.main(["evaluate", "/nowhere/model.keras"]) == 2
    assert "keras-cmr evaluate: error: no model file at" in capsys.readouterr().err


def test_start_up_lines_are_held_back_and_every_other_line_written(capfd):
    with quiet.start_up_lines_filtered():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
                    b"written to STDERR\n")
        os.write(2, b"I0000 00:00:1796588240.131267    4138 port.cc:153] oneDNN custom "
                    b"operations are on.\n")
        os.write(2, b"W0000 00:00:1796589472.882423   20228 gpu_timer.cc:52] another "
                    b"framework line\n")
        os.write(2, b"To enable the following instructions: AVX2 FMA, in other operations\n")
        os.write(2, b"a last line without its end")
        # Nothing reaches stderr inside the block: it is held back.
        assert capfd.readouterr().err == ""
    assert capfd.readouterr().err == ("W0000 00:00:1796589472.882423   20228 gpu_timer.cc:52]"
                                      " another framework line\n"
                                      "a last line without its end")


@pytest.mark.parametrize("verbose", [False, True])
def test_verbose_leaves_the_log_level_to_the_frameworks(verbose, monkeypatch, capsys):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    argv = ["--verbose"] * verbose + ["evaluate", "/nowhere/model.keras"]
    assert main(argv) == 2
    assert os.environ.get("TF_CPP_MIN_LOG_LEVEL") == (None if verbose else "3")
    # After the command as before it: `keras-cmr COMMAND --verbose` works too.
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert main(["evaluate", "/nowhere/model.keras"] + ["--verbose"] * verbose) == 2
    assert os.environ.get("TF_CPP_MIN_LOG_LEVEL") == (None if verbose else "3")
    assert "no model file" in capsys.readouterr().err
