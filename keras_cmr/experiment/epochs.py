"""Epoch plans: how each training stage of a run gets its batches, callbacks and history.

A run hands one `EpochPlan` to every `fit_selected` it makes (the source, each out-of-fold
source, the method). `plan.stage(model, inputs, labels, batch_size, stopping)` returns that
stage's `StageFeed`: the data arguments of `fit`, the callbacks that go with them, and how the
stage's history is read. The plans:

- `ShuffledEpochs()`: every epoch reshuffled by numpy from a seed drawn when the stage starts
  (the run seeds numpy's generator at the start of every stage), so the batches are the same
  on every backend. The default.
- `SeededEpochs(seed)`: epoch e's batches are the `EpochOrder` of (seed, e) and the dropout
  generators are reseeded from (seed, e) (`ReproducibleEpochs`), so an epoch can be replayed
  alone (resuming); in a job of several
  processes each process feeds its share of those global batches, so the job trains on the
  one-process run's batches. With `backup=folder`, stage k is also backed up in
  folder/stage-k and resumed from there (`StageBackup`): `keras-cmr train --resume`.

`StageBackup` keeps in the stage's folder the weights, the optimizer state and the epoch,
the early-stopping counters and best weights, and the validation history, each backup written
whole or not at all; with the epochs drawn from (seed, epoch) alone, a stage killed in any epoch and
resumed ends with the weights and figures of a stage never interrupted (on the same backend
and machine). A stage that finished has no backup left (`StageBackup` removes it), so a
resumed run trains it again, to the same weights.
"""

import dataclasses
import json
import os
import shutil
import time

import keras
import numpy as np

from keras_cmr import distribution
from keras_cmr.callbacks import ReproducibleEpochs
from keras_cmr.datasets import EpochOrder, RowBatches
from keras_cmr.utils.checks import check_seed

# Least seconds between two backups of a stage (`StageBackup`).
BACKUP_INTERVAL = 10.0


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
    """Each stage's batches reshuffled every epoch, in an `EpochOrder` whose seed is drawn from
    numpy's global generator when the stage starts (`train_selected` seeds it from the run's
    seed). The order is numpy's on every backend; with several processes each feeds its share
    of the global batches."""

    def stage(self, model, inputs, labels, batch_size, stopping):
        seed = int(np.random.randint(0, 2**31 - 1))
        order = EpochOrder(len(labels), batch_size, seed,
                           num_processes=distribution.process_count(),
                           process_index=distribution.process_index())
        return StageFeed({"x": RowBatches(inputs, labels, order), "shuffle": False}, [],
                         fit_history)


class SeededEpochs(EpochPlan):
    """Every epoch drawn from (seed, epoch) alone; optionally each stage backed up.

    Args:
        seed: the run's seed, a non-negative integer.
        backup: None, or the folder of the stage backups (one process only: the processes
            of a job would write one folder).
        backup_interval: the least seconds between two backups of a stage (`StageBackup`).
    """

    def __init__(self, seed, backup=None, backup_interval=BACKUP_INTERVAL):
        self.seed = check_seed(seed)
        if backup is not None and distribution.process_count() > 1:
            raise ValueError("stage backups work in a one-process run only.")
        self.backup, self.backup_interval = backup, float(backup_interval)
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
            return StageFeed({"x": batches, "shuffle": False},
                             [ReproducibleEpochs(self.seed, batches)],
                             fit_history)
        if not model.built:
            # The backup restores into built weights; fit on TensorFlow builds later.
            model(batches[0][0])
        backup = StageBackup(folder, ReproducibleEpochs(self.seed, batches), stopping,
                             self.backup_interval)
        return StageFeed({"x": batches, "shuffle": False}, [backup],
                         lambda history: backup.history())


class StageBackup(keras.callbacks.Callback):
    """Backs up one stage in `folder` and restores it when `fit` starts.

    The first epoch is backed up, then the end of any epoch `interval` seconds or more after
    the last backup: a resumed stage replays the epochs since (each drawn from (seed, epoch)
    alone, so to the same weights), and a fast stage does not spend its time writing files
    (every epoch's backup cost TensorFlow's default run about 15% of its time, our
    measurement).

    A backup of epoch E is `epoch-E.weights.h5` (the model's weights and its optimizer's
    state), `early_stopping-E.npz` (the early-stopping state and the history) and
    `training_metadata.json` naming E. Each file is written under a temporary name and renamed,
    the metadata last, and the previous epoch's files are removed only after it: a process
    killed at any point leaves a complete backup (`keras.callbacks.BackupAndRestore` writes in
    place, so a kill while it writes leaves an empty metadata file that no resume can read).

    Args:
        folder: the stage's backup folder (created when the first epoch ends).
        epochs: the stage's `ReproducibleEpochs` (batch order and dropout from the seed).
        stopping: the stage's `keras.callbacks.EarlyStopping`, whose state is backed up too
            (it must come before this callback in `fit`'s list).
        interval: the least seconds between two backups (0: every epoch).
    """

    def __init__(self, folder, epochs, stopping, interval=BACKUP_INTERVAL):
        super().__init__()
        self.folder, self.epochs, self.stopping = folder, epochs, stopping
        self.interval = float(interval)
        self._logs = []
        self._saved_at = self._saved_epoch = None

    def history(self):
        """The stage's history, {name: per-epoch values}: the epochs of the killed runs, then
        this run's (what `fit` returns holds only this run's)."""
        merged = {}
        for logs in self._logs:
            for key, value in logs.items():
                merged.setdefault(key, []).append(value)
        return merged

    @property
    def _metadata_path(self):
        return os.path.join(self.folder, "training_metadata.json")

    def _paths(self, epoch):
        return (os.path.join(self.folder, f"epoch-{epoch}.weights.h5"),
                os.path.join(self.folder, f"early_stopping-{epoch}.npz"))

    def on_train_begin(self, logs=None):
        self._logs = []
        self._saved_at = self._saved_epoch = None
        self.epochs.set_model(self.model)
        # After the early stopping's own on_train_begin (it comes first in the list), which
        # resets its counters: the restored ones replace them.
        if os.path.exists(self._metadata_path):
            with open(self._metadata_path) as stream:
                epoch = int(json.load(stream)["epoch"])
            self._restore(epoch)
            # `fit` starts from the model's `_initial_epoch`, as it does for BackupAndRestore.
            self.model._initial_epoch = epoch
            self._saved_epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._logs.append({key: float(value) for key, value in (logs or {}).items()})
        if self._saved_at is not None and time.monotonic() - self._saved_at < self.interval:
            return
        self._save(epoch + 1)
        if self._saved_epoch is not None:
            for path in self._paths(self._saved_epoch):
                if os.path.exists(path):
                    os.remove(path)
        self._saved_at, self._saved_epoch = time.monotonic(), epoch + 1

    def on_train_end(self, logs=None):
        if os.path.isdir(self.folder):
            shutil.rmtree(self.folder)

    def _save(self, epoch):
        os.makedirs(self.folder, exist_ok=True)
        weights_path, state_path = self._paths(epoch)
        partial_weights = os.path.join(self.folder, "partial.weights.h5")
        self.model.save_weights(partial_weights, overwrite=True)
        os.replace(partial_weights, weights_path)
        stopping = self.stopping
        state = {"logs": json.dumps(self._logs), "wait": stopping.wait, "best": stopping.best,
                 "best_epoch": stopping.best_epoch, "stopped_epoch": stopping.stopped_epoch,
                 "has_best_weights": stopping.best_weights is not None}
        for index, weight in enumerate(stopping.best_weights or ()):
            state[f"weight_{index}"] = np.asarray(weight)
        partial_state = state_path + ".partial.npz"
        np.savez(partial_state, **state)
        os.replace(partial_state, state_path)
        partial_metadata = self._metadata_path + ".partial"
        with open(partial_metadata, "w") as stream:
            json.dump({"epoch": epoch}, stream)
        os.replace(partial_metadata, self._metadata_path)

    def _restore(self, epoch):
        weights_path, state_path = self._paths(epoch)
        for path in (weights_path, state_path):
            if not os.path.exists(path):
                raise FileNotFoundError(f"the backup in {self.folder} is of epoch {epoch} but "
                                        f"{path} is missing; remove the folder to start over.")
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            # Its variables must exist for the weights file to fill them.
            optimizer.build(self.model.trainable_variables)
        self.model.load_weights(weights_path)
        with np.load(state_path) as state:
            self._logs = json.loads(str(state["logs"]))
            stopping = self.stopping
            stopping.wait, stopping.best = int(state["wait"]), float(state["best"])
            stopping.best_epoch = int(state["best_epoch"])
            stopping.stopped_epoch = int(state["stopped_epoch"])
            if bool(state["has_best_weights"]):
                count = sum(name.startswith("weight_") for name in state.files)
                stopping.best_weights = [state[f"weight_{index}"] for index in range(count)]
