"""Resumable training stages: a killed `keras-cmr train --resume` continues where it stopped.

`ResumableStages(folder, seed)`, given among a run's callbacks, makes every stage that
`fit_selected` trains resumable: stage k (counted in the order the run trains them: the
source, or each out-of-fold source, then the method) keeps a
`keras.callbacks.BackupAndRestore` in `folder/stage-k` (weights, optimizer state, epoch),
the early-stopping counters and best weights, and the validation history, and draws each
epoch's batches and dropout masks from (seed, epoch) alone (`ReproducibleEpochs`). A run
killed in any epoch and resumed therefore ends with the weights and figures of a run never
interrupted (on the same backend and machine). A stage that finished has no backup left
(BackupAndRestore removes it), so a resumed run trains it again, to the same weights.
"""

import json
import os

import keras
import numpy as np

from keras_cmr.callbacks import ReproducibleEpochs


class EpochBatches(keras.utils.PyDataset):
    """Batches of named input arrays and labels whose order is drawn from (seed, epoch).

    `fit(..., shuffle=True)` on arrays draws its order from the backend's random state, which
    a resumed process cannot replay (tf.data's shuffle keeps its own state); here epoch e's
    order is `np.random.default_rng([seed, e]).permutation(n)`, every batch but the last
    `batch_size` pairs. `ReproducibleEpochs` sets `epoch` before each epoch.
    """

    def __init__(self, inputs, labels, batch_size, seed):
        super().__init__()
        self.inputs, self.labels = inputs, labels
        self.batch_size, self.seed = batch_size, seed
        self.epoch = 0
        self._order = (None, None)

    def __len__(self):
        return -(-len(self.labels) // self.batch_size)

    def __getitem__(self, index):
        epoch, order = self._order
        if epoch != self.epoch:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.labels))
            self._order = (self.epoch, order)
        rows = order[index * self.batch_size:(index + 1) * self.batch_size]
        return {key: value[rows] for key, value in self.inputs.items()}, self.labels[rows]

    def on_epoch_end(self):
        self.epoch += 1


class ResumableStages(keras.callbacks.Callback):
    """Backs up each training stage in `folder/stage-k` and restores it on the next run.

    Give it among the `callbacks` of `run_method` (or `compare`); `fit_selected` then feeds
    `batches(...)` and registers its early stopping with `track`. Methods with their own
    `fit` (the linear ones) train in closed form and are not backed up.

    Args:
        folder: the backup folder (created when the first epoch ends).
        seed: the run's seed, a non-negative integer.
    """

    def __init__(self, folder, seed=0):
        super().__init__()
        self.folder, self.seed = folder, seed
        self.stage = -1
        self._stopping = self._backup = self._epochs = self._data = None
        self._logs = []

    def batches(self, inputs, labels, batch_size):
        """The training data of the next stage: an `EpochBatches`."""
        self._data = EpochBatches(inputs, labels, batch_size, self.seed)
        return self._data

    def track(self, stopping):
        """Backs up the state of the next stage's `keras.callbacks.EarlyStopping` too."""
        self._stopping = stopping

    def history(self):
        """The last stage's history, {name: per-epoch values}: the epochs of the killed runs,
        then this run's (what `fit` returns holds only this run's)."""
        merged = {}
        for logs in self._logs:
            for key, value in logs.items():
                merged.setdefault(key, []).append(value)
        return merged

    def _stage_folder(self):
        return os.path.join(self.folder, f"stage-{self.stage}")

    def _state_path(self, epoch):
        return os.path.join(self._stage_folder(), f"early_stopping-{epoch}.npz")

    def on_train_begin(self, logs=None):
        self.stage += 1
        self._logs = []
        self._backup = keras.callbacks.BackupAndRestore(self._stage_folder())
        self._epochs = ReproducibleEpochs(self.seed, self._data)
        for callback in (self._backup, self._epochs):
            callback.set_model(self.model)
        # After the early stopping's own on_train_begin (it comes first in the list), which
        # resets its counters: the restored ones replace them.
        self._backup.on_train_begin(logs)
        epoch = getattr(self.model, "_initial_epoch", None) or 0
        if epoch:
            self._restore(epoch)

    def on_epoch_begin(self, epoch, logs=None):
        self._epochs.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._logs.append({key: float(value) for key, value in (logs or {}).items()})
        # The state of epoch + 1 is written before the backup that names that epoch, and the
        # previous one removed after it: a kill between them leaves a matching pair.
        self._save(epoch + 1)
        self._backup.on_epoch_end(epoch, logs)
        previous = self._state_path(epoch)
        if os.path.exists(previous):
            os.remove(previous)

    def on_train_end(self, logs=None):
        self._backup.on_train_end(logs)
        self._stopping = self._data = None

    def _save(self, epoch):
        state = {"logs": json.dumps(self._logs)}
        stopping = self._stopping
        if stopping is not None:
            state.update(wait=stopping.wait, best=stopping.best, best_epoch=stopping.best_epoch,
                         stopped_epoch=stopping.stopped_epoch,
                         has_best_weights=stopping.best_weights is not None)
            for index, weight in enumerate(stopping.best_weights or ()):
                state[f"weight_{index}"] = np.asarray(weight)
        os.makedirs(self._stage_folder(), exist_ok=True)
        temporary = self._state_path(epoch) + ".partial.npz"
        np.savez(temporary, **state)
        os.replace(temporary, self._state_path(epoch))

    def _restore(self, epoch):
        path = self._state_path(epoch)
        if not os.path.exists(path):
            raise FileNotFoundError(f"the backup in {self._stage_folder()} is of epoch {epoch} "
                                    f"but {path} is missing; remove the folder to start over.")
        with np.load(path) as state:
            self._logs = json.loads(str(state["logs"]))
            stopping = self._stopping
            if stopping is None:
                return
            stopping.wait, stopping.best = int(state["wait"]), float(state["best"])
            stopping.best_epoch = int(state["best_epoch"])
            stopping.stopped_epoch = int(state["stopped_epoch"])
            if bool(state["has_best_weights"]):
                count = sum(name.startswith("weight_") for name in state.files)
                stopping.best_weights = [state[f"weight_{index}"] for index in range(count)]
