"""Data-parallel training over devices and processes (see docs/scaling.md).

`replicas`: the global batch that the in-batch losses compare, and the `data_parallel()` scope.
`processes`: multi-process training on JAX (joining, per-process rows, the one writer).
"""

from keras_cmr.distribution.processes import (COORDINATOR_ENV, NUM_PROCESSES_ENV,
                                              PROCESS_ID_ENV, initialize_processes, is_chief,
                                              multiprocess_requested, process_count,
                                              process_index, process_rows, shutdown_processes)
from keras_cmr.distribution.replicas import (batch_multiple, data_parallel,
                                             gather_global_batch, replica_count, replica_share,
                                             replicated_inputs, scale_for_replicas)

__all__ = [
    "COORDINATOR_ENV", "NUM_PROCESSES_ENV", "PROCESS_ID_ENV", "batch_multiple",
    "data_parallel", "gather_global_batch", "initialize_processes", "is_chief",
    "multiprocess_requested", "process_count", "process_index",
    "process_rows", "replica_count", "replica_share", "replicated_inputs",
    "scale_for_replicas", "shutdown_processes",
]
