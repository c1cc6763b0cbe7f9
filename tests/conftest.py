"""Shared test set-up: an isolated KERAS_HOME, the backend in use, and the real data path."""

import atexit
import os
import shutil
import tempfile

# Keras reads and writes ~/.keras/keras.json on first import: never touch the user's file.
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="keras-home-"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# XLA's CPU optimisation passes cost seconds per compiled function and the tests' tiny
# models gain nothing from them (first fit on JAX: about 9 s -> 2.5 s).
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

if keras.backend.backend() == "jax":
    import jax

    # Many tests compile the same small steps again (the same towers, another seed or
    # method): an on-disk cache of compiled executables, this process's own (a subprocess
    # does not inherit it), serves the repeats (tests/methods on JAX: 18% less CPU time).
    _jax_cache = tempfile.mkdtemp(prefix="jax-cache-")
    atexit.register(shutil.rmtree, _jax_cache, ignore_errors=True)
    jax.config.update("jax_compilation_cache_dir", _jax_cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA_DIR = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")


def shared_data_dir():
    return os.environ.get("KERAS_CMR_DATA", DEFAULT_DATA_DIR)


@pytest.fixture(scope="session")
def data_dir():
    """The real benchmark data (../shared/data): a clear failure, never a skip, when missing."""
    path = shared_data_dir()
    wikipedia = os.path.join(path, "wikipedia_sift_lda")
    if not os.path.isdir(wikipedia):
        pytest.fail(
            f"the real benchmark data was expected at {wikipedia!r} (../shared/data beside the "
            "checkout, or set KERAS_CMR_DATA to the folder holding wikipedia_sift_lda/)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def wikipedia_dir(data_dir):
    return os.path.join(data_dir, "wikipedia_sift_lda")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def pairs(rng):
    """Small paired data of 4 classes, 10 pairs each, whose two views share a class signal:
    ({"image": (40, 12), "text": (40, 5)}, labels)."""
    labels = np.repeat(np.arange(4), 10)
    centres = rng.normal(size=(4, 6))
    image = np.concatenate([centres[labels], rng.normal(size=(40, 6))], 1).astype("float32")
    text = (centres[labels][:, :5] + 0.5 * rng.normal(size=(40, 5))).astype("float32")
    return {"image": image, "text": text}, labels


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"
