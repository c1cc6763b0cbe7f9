"""CPU threads of the host-side numpy work: how many, and numpy's BLAS held to one.

Our measurement (benchmarks/README.md, 2-core VM shared with other jobs): OpenBLAS splits one
matmul over its threads, which then wait for each other whenever another process holds a
core; a 217 x 256 x 217 product took 30 ms in two threads and 0.6 ms in one, the same values.
Work split into independent parts, each with one BLAS thread, does not wait that way.
"""

import contextlib
import os

# The CPUs this process may run on.
CPU_WORKERS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

_controller = None


def one_blas_thread(enabled=True):
    """A context in which numpy's BLAS runs one thread (process-wide), restored at its end;
    with `enabled` False, a no-op. threadpoolctl (a scikit-learn dependency) applies the
    limit when the context is made: make one per `with`."""
    global _controller
    if not enabled:
        return contextlib.nullcontext()
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")
