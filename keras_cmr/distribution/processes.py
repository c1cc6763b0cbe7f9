"""Multi-process training on JAX: joining the processes, sharding the pairs, one writer.

Every process runs the same script. `initialize_processes` joins them into one JAX runtime
(one device mesh over the devices of all processes); `data_parallel()` then builds the
distribution over that mesh. Each process feeds its own rows of every global batch
(`process_rows`), Keras assembles the global batch from them
(`jax.make_array_from_process_local_data`), and the in-batch losses see all pairs of all
processes. The weights are replicated, so every process computes the same validation figures
and takes the same early-stopping decision; only the chief (`is_chief()`) writes files.

TensorFlow and PyTorch raise `NotImplementedError` (see docs/scaling.md for why).
"""

import os

import keras
import numpy as np

# Keras' own variables (`keras.distribution.initialize`), so one launcher serves both.
COORDINATOR_ENV = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
NUM_PROCESSES_ENV = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID_ENV = "KERAS_DISTRIBUTION_PROCESS_ID"


def _jax_is_distributed():
    if keras.backend.backend() != "jax":
        return False
    import jax

    return jax.distributed.is_initialized()


def _setting(value, name, convert=str):
    if value is None and os.environ.get(name):
        value = os.environ[name]
    return None if value is None else convert(value)


def multiprocess_requested():
    """True when `KERAS_DISTRIBUTION_NUM_PROCESSES` asks for more than one process."""
    return int(os.environ.get(NUM_PROCESSES_ENV) or 1) > 1


def initialize_processes(coordinator=None, num_processes=None, process_id=None):
    """Joins this process to a multi-process JAX job; call it before any JAX computation.

    Arguments left None are read from `KERAS_DISTRIBUTION_JOB_ADDRESSES` (the coordinator,
    "host:port"; the first of a comma-separated list), `KERAS_DISTRIBUTION_NUM_PROCESSES` and
    `KERAS_DISTRIBUTION_PROCESS_ID`, the variables of `keras.distribution.initialize`. On CPUs
    the cross-process collectives use gloo (XLA's CPU client has no other implementation across
    processes). A job of one process needs no call; one of 1 is accepted and does nothing.

    Args:
        coordinator: "host:port" of process 0, which listens there.
        num_processes: the number of processes of the job.
        process_id: this process's index, 0 .. num_processes - 1.

    Raises:
        NotImplementedError: on the tensorflow and torch backends (docs/scaling.md).
        ValueError: for a missing coordinator, or a process id outside 0 .. num_processes - 1.
        RuntimeError: when JAX has already computed something (too late to join).
    """
    num_processes = _setting(num_processes, NUM_PROCESSES_ENV, int)
    if num_processes is None or num_processes == 1:
        return
    backend = keras.backend.backend()
    if backend != "jax":
        raise NotImplementedError(
            f"multi-process training ({num_processes} processes) is supported on the jax "
            f"backend only, not on {backend!r}: run one process (data_parallel() over its "
            "local devices), or set KERAS_BACKEND=jax (see docs/scaling.md)."
        )
    coordinator = _setting(coordinator, COORDINATOR_ENV)
    process_id = _setting(process_id, PROCESS_ID_ENV, int)
    if not coordinator:
        raise ValueError(f"{num_processes} processes need a coordinator address (host:port of "
                         f"process 0): pass coordinator= or set {COORDINATOR_ENV}.")
    if process_id is None or not 0 <= process_id < num_processes:
        raise ValueError(f"process_id must be in 0 .. {num_processes - 1}, got {process_id!r} "
                         f"(pass process_id= or set {PROCESS_ID_ENV}).")
    import jax

    if jax.distributed.is_initialized():
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize(coordinator.split(",")[0], num_processes, process_id)


def shutdown_processes():
    """Leaves the multi-process job (all processes call it at the end); a no-op otherwise."""
    if _jax_is_distributed():
        import jax

        jax.distributed.shutdown()


def process_count():
    """The number of processes of the job: `jax.process_count()` after
    `initialize_processes`, else 1 (this never starts a JAX backend)."""
    if not _jax_is_distributed():
        return 1
    import jax

    return jax.process_count()


def process_index():
    """This process's index in the job (0 .. process_count() - 1); 0 outside a job."""
    if not _jax_is_distributed():
        return 0
    import jax

    return jax.process_index()


def is_chief():
    """True in the one process that writes files (process 0), and in a single-process run."""
    return process_index() == 0


def process_rows(num_rows, global_batch_size, num_processes=None, index=None):
    """The rows of a training set that this process feeds, in the order it feeds them.

    Global batch b holds rows b * B .. (b + 1) * B - 1 (B = `global_batch_size`), as in a
    one-process run of `fit(batch_size=B, shuffle=False)`. Process p feeds the p-th slice of
    B / P rows of every global batch, so `fit(x[rows], batch_size=B // P, shuffle=False)` in
    every process trains on exactly those global batches. The rows after the last full global
    batch are left out (every process must run the same number of steps). With `shuffle=True`
    each process permutes its own rows: still global batches of B pairs, drawn differently.

    Args:
        num_rows: the number of training pairs.
        global_batch_size: B, which must divide by the number of processes.
        num_processes, index: default `process_count()` and `process_index()`.

    Returns:
        an int64 index array of (num_rows // B) * B / P rows.
    """
    num_processes = process_count() if num_processes is None else num_processes
    index = process_index() if index is None else index
    if global_batch_size % num_processes:
        raise ValueError(f"the global batch size ({global_batch_size}) must divide by the "
                         f"number of processes ({num_processes}).")
    if num_rows < global_batch_size:
        raise ValueError(f"{num_rows} rows do not fill one global batch of "
                         f"{global_batch_size}.")
    local = global_batch_size // num_processes
    starts = np.arange(num_rows // global_batch_size) * global_batch_size + index * local
    return (starts[:, None] + np.arange(local)).reshape(-1)
