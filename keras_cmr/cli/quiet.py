"""Keeps the frameworks' C++ start-up lines off stderr (`keras-cmr --verbose` shows them).

TensorFlow (imported by Keras on every backend, on JAX and PyTorch only when first needed)
and XLA log through absl. `TF_CPP_MIN_LOG_LEVEL` silences what they log once absl is set up
(e.g. "failed call to cuInit" when training starts on a machine without a GPU), but the
shared libraries' start-up lines ("oneDNN custom operations are on", cudart_stub,
cpu_feature_guard) come before absl reads it: a command's stderr is therefore filtered of
those lines while it runs (our own measurement, TensorFlow 2.21, JAX 0.10, PyTorch 2.13).
"""

import contextlib
import os
import re
import sys
import threading

# Level 3 also hides C++ ERROR lines: the errors that matter reach Python as exceptions.
QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3"}
# absl's format: severity letter, date, time, thread, file:line], then the message; the
# cpu_feature_guard message continues on a line of its own.
START_UP_LINE = re.compile(
    r"^(?:WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IWE]\d{4} [\d:.]+\s+\d+ (?:port|cudart_stub|cpu_feature_guard|cuda_\w+)\.cc:\d+\] "
    r"|To enable the following instructions: )")


def quiet_environment():
    """Sets the log-level variables the user has not set, before any framework import."""
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


@contextlib.contextmanager
def start_up_lines_filtered():
    """Inside the block, stderr (file descriptor 2, C++ code included) receives every line
    but the frameworks' start-up lines (`START_UP_LINE`)."""
    sys.stderr.flush()
    stderr = os.dup(2)
    read_end, write_end = os.pipe()
    forwarder = threading.Thread(target=_forward, args=(read_end, stderr), daemon=True)
    forwarder.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(stderr, 2)  # closes the pipe's last write end: the forwarder reads its end
        forwarder.join(timeout=5)
        os.close(stderr)


def _forward(read_end, stderr):
    """Copies whole lines from `read_end` to `stderr`, start-up lines left out."""
    pending = b""
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            _write(stderr, [line + b"\n" for line in lines])
    _write(stderr, [pending] if pending else [])


def _write(stderr, lines):
    kept = b"".join(line for line in lines
                    if not START_UP_LINE.match(line.decode(errors="replace")))
    if kept:
        os.write(stderr, kept)
