"""Epoch plans: how each training stage of a run gets its batches, callbacks and history.

A run hands one `EpochPlan` to every `fit_selected` it makes (the source, each out-of-fold
source, the method). `plan.stage(model, inputs, labels, batch_size, stopping)` returns that
stage's `StageFeed`: the data arguments of `fit`, the callbacks that go with them, and how the
stage's history is read. The plans:

- `ShuffledEpochs()`: Keras' own `shuffle=True` on the arrays, drawn from the backend's
  random state (which the run seeds at the start of every stage). The default.
- `SeededEpochs(seed)`: epoch e's batches are the `EpochOrder` of (seed, e) and the dropout
  generators are reseeded from (seed, e) (`ReproducibleEpochs`); in a job of several
  processes each process feeds its share of those global batches, so the job trains on the
  one-process run's batches. With `backup=folder`, stage k is also backed up in
  folder/stage-k and resumed from there (`StageBackup`): `keras-cmr train --resume`.
"""

import dataclasses
import os

from keras_cmr import distribution
from keras_cmr.callbacks import ReproducibleEpochs
from keras_cmr.datasets import EpochOrder, RowBatches
from keras_cmr.experiment.backup import StageBackup
from keras_cmr.utils.checks import check_seed


@dataclasses.dataclass
class StageFeed:
    """What one stage's `fit` gets from its plan.

    Attributes:
        data: `fit`'s data arguments (`x`, and `y`, `batch_size`, `shuffle` for arrays).
        callbacks: callbacks for `fit`, after the protocol's own.
        history: `history(fit_history)` -> the stage's history, {name: per-epoch values}.
    """

    data: dict
    callbacks: list
    history: object


class EpochPlan:
    """The interface: the epochs of each training stage of a run."""

    def stage(self, model, inputs, labels, batch_size, stopping):
        """The `StageFeed` of the next stage.

        Args:
            model: the compiled model the stage fits.
            inputs: dict of arrays, one row per training pair (all of them).
            labels: the training labels.
            batch_size: the global batch size.
            stopping: the stage's `keras.callbacks.EarlyStopping`.
        """
        raise NotImplementedError


def fit_history(history):
    """The stage history of a plan whose `fit` saw every epoch: `fit`'s own."""
    return history


class ShuffledEpochs(EpochPlan):
    """Keras' `shuffle=True` on the arrays; with several processes, each shuffles its
    `distribution.process_rows` share (every global batch of B pairs, drawn per process)."""

    def stage(self, model, inputs, labels, batch_size, stopping):
        if distribution.process_count() > 1:
            rows = distribution.process_rows(len(labels), batch_size)
            inputs = {key: value[rows] for key, value in inputs.items()}
            labels, batch_size = labels[rows], batch_size // distribution.process_count()
        data = {"x": inputs, "y": labels, "batch_size": batch_size, "shuffle": True}
        return StageFeed(data, [], fit_history)


class SeededEpochs(EpochPlan):
    """Every epoch drawn from (seed, epoch) alone; optionally each stage backed up.

    Args:
        seed: the run's seed, a non-negative integer.
        backup: None, or the folder of the stage backups (one process only: the processes
            of a job would write one folder).
    """

    def __init__(self, seed, backup=None):
        self.seed = check_seed(seed)
        if backup is not None and distribution.process_count() > 1:
            raise ValueError("stage backups work in a one-process run only.")
        self.backup = backup
        self.stages = 0

    def stage(self, model, inputs, labels, batch_size, stopping):
        order = EpochOrder(len(labels), batch_size, self.seed,
                           num_processes=distribution.process_count(),
                           process_index=distribution.process_index())
        batches = RowBatches(inputs, labels, order)
        folder = (None if self.backup is None
                  else os.path.join(self.backup, f"stage-{self.stages}"))
        self.stages += 1
        if folder is None:
            return StageFeed({"x": batches}, [ReproducibleEpochs(self.seed, batches)],
                             fit_history)
        if not model.built:
            # BackupAndRestore restores into built weights; fit on TensorFlow builds later.
            model(batches[0][0])
        backup = StageBackup(folder, ReproducibleEpochs(self.seed, batches), stopping)
        return StageFeed({"x": batches}, [backup], lambda history: backup.history())
