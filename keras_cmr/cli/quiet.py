"""Keeps the frameworks' C++ start-up lines off stderr (`keras-cmr --verbose` shows them).

TensorFlow and XLA log through absl. `TF_CPP_MIN_LOG_LEVEL` silences what they log once absl
is set up (e.g. "failed call to cuInit" when training starts on a machine without a GPU), but
the shared libraries' start-up lines ("oneDNN custom operations are on", cudart_stub,
cpu_feature_guard) come while TensorFlow is imported, before absl reads it (our measurement,
TensorFlow 2.21, JAX 0.10, PyTorch 2.13). The console script (keras_cmr_cli) therefore holds
back stderr while it imports the frameworks (`start_up_lines_filtered`), and writes it out
without those lines.

Keras imports TensorFlow, where it is installed, on the JAX and PyTorch backends too: when a
seed is set (`keras.utils.set_random_seed`, in every command that trains) and with keras-hub.
The commands that do so (`TENSORFLOW_COMMANDS`) import it with the framework, inside the
filter (`import_tensorflow_if_used`).
"""

import contextlib
import importlib
import importlib.util
import os
import re
import sys
import tempfile

# Level 3 also hides C++ ERROR lines: the errors that matter reach Python as exceptions.
QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3"}
# absl's format: severity letter, date, time, thread, file:line], then the message; the
# cpu_feature_guard message continues on a line of its own.
START_UP_LINE = re.compile(
    r"^(?:WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IWE]\d{4} [\d:.]+\s+\d+ (?:port|cudart_stub|cpu_feature_guard|cuda_\w+)\.cc:\d+\] "
    r"|To enable the following instructions: )")
# The commands that import TensorFlow on every backend where it is installed: the ones that
# train seed it (`keras.utils.set_random_seed`), extract-features imports keras-hub.
TENSORFLOW_COMMANDS = ("train", "compare", "extract-features")


def quiet_environment():
    """Sets the log-level variables the user has not set, before any framework import."""
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def import_tensorflow_if_used(command):
    """Imports TensorFlow now if `command` would import it later (`TENSORFLOW_COMMANDS`) and it
    is installed."""
    if command in TENSORFLOW_COMMANDS and importlib.util.find_spec("tensorflow") is not None:
        importlib.import_module("tensorflow")


@contextlib.contextmanager
def start_up_lines_filtered():
    """Inside the block, what reaches stderr (file descriptor 2, C++ code included) is held in
    a temporary file; after it, every line but the frameworks' start-up lines (`START_UP_LINE`)
    goes to stderr."""
    sys.stderr.flush()
    stderr = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(stderr, 2)
            os.close(stderr)
            held.seek(0)
            kept = b"".join(line for line in held
                            if not START_UP_LINE.match(line.decode(errors="replace")))
            if kept:
                os.write(2, kept)
