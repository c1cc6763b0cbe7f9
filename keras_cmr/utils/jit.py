"""Numba kernels compiled on their first call, so that `import keras_cmr` imports no numba."""

import functools
import threading


def compiled_on_first_call(function):
    """`function`, run by `numba.njit(nogil=True, cache=True)(function)`, compiled (or read
    from numba's cache) on the first call: `import numba` alone takes 0.23-0.34 s (our
    measurement), which a run that never calls the kernel should not pay. Thread-safe: the
    first calls may come from several worker threads at once."""
    lock = threading.Lock()
    compiled = None

    @functools.wraps(function)
    def call(*args):
        nonlocal compiled
        if compiled is None:
            with lock:
                if compiled is None:
                    import numba

                    compiled = numba.njit(nogil=True, cache=True)(function)
        return compiled(*args)

    return call
