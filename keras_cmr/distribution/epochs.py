"""The epochs of a one-process `keras-cmr train`, shared out among the processes of a job.

A one-process `keras-cmr train` feeds `keras_cmr.experiment.resume.EpochBatches`: epoch e's
order is `np.random.default_rng([seed, e]).permutation(n)`, cut into batches of B pairs (the
last one smaller), and `ReproducibleEpochs` reseeds the dropout generators from (seed, e).
`SharedEpochs` gives each of P processes its share of exactly those global batches, with the
same reseeding, so a P-process run trains on the same global batches with the same dropout
masks and ends with the one-process run's weights (to float32 rounding; our measurement,
docs/scaling.md). Keras' own `shuffle=True` would permute each process's rows separately:
other global batches, and the same rows left out of every epoch.
"""

import keras
import numpy as np

from keras_cmr.callbacks import ReproducibleEpochs
from keras_cmr.distribution import processes
from keras_cmr.utils.checks import check_positive_int, check_seed


class ProcessEpochBatches(keras.utils.PyDataset):
    """This process's share of every global batch of `batch_size` pairs, in epoch `epoch`'s
    order `np.random.default_rng([seed, epoch]).permutation(n)`.

    Global batch b holds the pairs order[b * B:(b + 1) * B]; process p feeds the p-th of P
    equal slices of it (B / P pairs; the last batch r // P). When the last batch's r pairs do
    not divide by P, its last r mod P are left out: every process must feed as many.

    Args:
        inputs: dict of arrays, one row per pair (all processes hold all pairs).
        labels: array of the pairs' labels.
        batch_size: B, the global batch size, which must divide by P.
        seed: non-negative integer.
        num_processes, index: default `process_count()` and `process_index()`.
    """

    def __init__(self, inputs, labels, batch_size, seed, num_processes=None, index=None):
        super().__init__()
        self.num_processes = (processes.process_count() if num_processes is None
                              else num_processes)
        self.index = processes.process_index() if index is None else index
        self.batch_size = check_positive_int(batch_size, "`batch_size`")
        if self.batch_size % self.num_processes:
            raise ValueError(f"the global batch size ({batch_size}) must divide by the number "
                             f"of processes ({self.num_processes}).")
        self.inputs, self.labels, self.seed = inputs, labels, check_seed(seed)
        self.epoch = 0
        self._order = (None, None)

    def __len__(self):
        full, last = divmod(len(self.labels), self.batch_size)
        return full + (last >= self.num_processes)

    def __getitem__(self, index):
        epoch, order = self._order
        if epoch != self.epoch:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.labels))
            self._order = (self.epoch, order)
        batch = order[index * self.batch_size:(index + 1) * self.batch_size]
        share = len(batch) // self.num_processes
        rows = batch[self.index * share:(self.index + 1) * share]
        return {key: value[rows] for key, value in self.inputs.items()}, self.labels[rows]

    def on_epoch_end(self):
        self.epoch += 1


class SharedEpochs(keras.callbacks.Callback):
    """In a multi-process job, feeds each training stage the one-process run's epochs.

    Give it among the `callbacks` of `run_with_source` (as `keras-cmr train` does with several
    processes); `fit_selected` then fits on `batches(...)`, a `ProcessEpochBatches`, and this
    callback reseeds every epoch like `ReproducibleEpochs`. Nothing is backed up (the processes
    would write one folder): the multi-process counterpart of `ResumableStages`.

    Args:
        seed: the run's seed, a non-negative integer.
    """

    def __init__(self, seed):
        super().__init__()
        self.seed = check_seed(seed)
        self._data = self._epochs = None
        self._logs = []

    def batches(self, inputs, labels, batch_size):
        """The training data of the next stage: this process's `ProcessEpochBatches`."""
        self._data = ProcessEpochBatches(inputs, labels, batch_size, self.seed)
        return self._data

    def track(self, stopping):
        """Accepts the stage's early stopping (as `ResumableStages` does); nothing to back up."""
        del stopping

    def history(self):
        """The last stage's history, {name: per-epoch values}."""
        merged = {}
        for logs in self._logs:
            for key, value in logs.items():
                merged.setdefault(key, []).append(value)
        return merged

    def on_train_begin(self, logs=None):
        self._logs = []
        self._epochs = ReproducibleEpochs(self.seed, self._data)
        self._epochs.set_model(self.model)

    def on_epoch_begin(self, epoch, logs=None):
        self._epochs.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._logs.append({key: float(value) for key, value in (logs or {}).items()})

    def on_train_end(self, logs=None):
        self._data = self._epochs = None
