"""`keras-cmr`'s start-up: help without a framework, commands without C++ start-up logs.

That a real `keras-cmr train` keeps the C++ start-up lines off stderr is checked on the
subprocess runs of tests/cli/test_resume.py (one training subprocess serves both).
"""

import json
import os
import re
import subprocess
import sys

import pytest

from keras_cmr import methods
from keras_cmr.cli.main import COMMANDS, main

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FRAMEWORKS = ("tensorflow", "jax", "torch", "keras")

# Runs the console script's entry point on each argv given as JSON; prints what it printed
# and the framework modules it imported.
HELP_SCRIPT = """
import contextlib, io, json, os, sys
import keras_cmr_cli
pages = {}
for argv in json.loads(sys.argv[1]):
    page = io.StringIO()
    with contextlib.redirect_stdout(page):
        try:
            keras_cmr_cli.main(argv)
        except SystemExit as exit:
            assert exit.code == 0, (argv, exit.code)
    pages[" ".join(argv)] = page.getvalue()
loaded = sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[2].split(",")))
print(json.dumps({"pages": pages, "frameworks": loaded,
                  "lazy_variable_left": os.environ.get("KERAS_CMR_LAZY_IMPORT")}))
"""


def child_environment(**changes):
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_CMR_LAZY_IMPORT")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, env.get("PYTHONPATH")]))
    return {**env, **changes}


def test_help_of_the_command_and_of_each_subcommand_imports_no_framework():
    commands = [["--help"]] + [[name, "--help"] for name in
                               ("train", "evaluate", "compare", "plot", "extract-features",
                                "index", "search")]
    assert len(commands) == len(COMMANDS) + 1
    child = subprocess.run(
        [sys.executable, "-c", HELP_SCRIPT, json.dumps(commands), ",".join(FRAMEWORKS)],
        capture_output=True, text=True, env=child_environment(), cwd=REPO_ROOT, timeout=120)
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout.splitlines()[-1])
    assert report["frameworks"] == [] and report["lazy_variable_left"] is None
    assert "--verbose" in report["pages"]["--help"]
    for command in ("train --help", "compare --help"):
        for name in methods.available():
            line = f"  {name} +{re.escape(methods.get(name).description)}$"
            assert re.search(line, report["pages"][command], re.M), (command, name)


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
