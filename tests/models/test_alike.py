"""One seed, one model: the same initial weights on TensorFlow, JAX and PyTorch, and the same
training to float tolerance, eager or compiled.

Each backend's run compares its own figures with the next backend's (TensorFlow -> JAX ->
PyTorch -> TensorFlow, run in a fresh process), so the three runs of the suite cover every
pair; eager and compiled steps are compared within each backend.
"""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

JOB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "alike_job.py")
# The suite imports by path (pytest's importlib mode), not from sys.path.
_spec = importlib.util.spec_from_file_location("alike_job", JOB)
alike_job = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(alike_job)

BACKENDS = ("tensorflow", "jax", "torch")
# Adam divides by the root of the squared gradient: where a gradient is near 0, its rounding
# moves the step (measured: 7.6e-6 at most after 3 steps, one weight in 192).
WEIGHT_RTOL, WEIGHT_ATOL, LOSS_RTOL = 1e-4, 1e-5, 1e-4


@pytest.fixture(scope="module")
def here():
    return alike_job.all_figures()


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    backend = BACKENDS[(BACKENDS.index(keras.backend.backend()) + 1) % len(BACKENDS)]
    path = tmp_path_factory.mktemp("alike") / "figures.npz"
    env = dict(os.environ, KERAS_BACKEND=backend)
    completed = subprocess.run([sys.executable, JOB, str(path)], env=env, capture_output=True,
                               text=True, timeout=600)
    assert completed.returncode == 0, f"{backend} failed:\n{completed.stderr[-3000:]}"
    with np.load(path) as figures:
        return backend, dict(figures)


def assert_same_training(figures, reference, mode, reference_mode, where,
                         stages=("source", "target")):
    for name in stages:
        initial = sorted(key for key in figures if key.startswith(f"{mode}_{name}_initial_"))
        assert initial, f"no {name} weights"
        for key in initial:
            other_key = key.replace(f"{mode}_", f"{reference_mode}_", 1)
            np.testing.assert_array_equal(figures[key], reference[other_key],
                                          err_msg=f"{key}, {where}")
            trained = key.replace("_initial_", "_trained_")
            np.testing.assert_allclose(
                figures[trained], reference[trained.replace(f"{mode}_", f"{reference_mode}_", 1)],
                rtol=WEIGHT_RTOL, atol=WEIGHT_ATOL, err_msg=f"{trained}, {where}")
        np.testing.assert_allclose(figures[f"{mode}_{name}_loss"],
                                   reference[f"{reference_mode}_{name}_loss"], rtol=LOSS_RTOL,
                                   err_msg=f"{name} loss, {where}")


def test_training_matches_the_next_backend(here, other):
    backend, figures = other
    assert_same_training(here, figures, "default", "default",
                         f"{keras.backend.backend()} against {backend}")


def test_eager_and_compiled_steps_train_alike():
    """The source stage (its dropout masks drawn in both) in one step."""
    eager = alike_job.stage_figures("eager", stages=("source",), batch_size=50)
    compiled = alike_job.stage_figures("compiled", stages=("source",), batch_size=50)
    assert_same_training(eager, compiled, "eager", "compiled", keras.backend.backend(),
                         stages=("source",))


def test_a_whole_run_gives_the_same_figures_on_the_next_backend(here, other):
    backend, figures = other
    for key in ("source_val", "met_val", "met_test"):
        np.testing.assert_allclose(here[key], figures[key], atol=1e-4,
                                   err_msg=f"{key}: {keras.backend.backend()} against {backend}")
    assert len(here["met_val"]) == 3
