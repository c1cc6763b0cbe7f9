"""`StageBackup`: one training stage backed up every epoch, so a killed run resumes exactly.

The stage keeps a `keras.callbacks.BackupAndRestore` in its folder (weights, optimizer state,
epoch), the early-stopping counters and best weights, and the validation history; its epochs
are drawn from (seed, epoch) alone (`ReproducibleEpochs`). A stage killed in any epoch and
resumed therefore ends with the weights and figures of a stage never interrupted (on the same
backend and machine). A stage that finished has no backup left (BackupAndRestore removes it),
so a resumed run trains it again, to the same weights.
"""

import json
import os

import keras
import numpy as np


class StageBackup(keras.callbacks.Callback):
    """Backs up one stage in `folder` every epoch and restores it when `fit` starts.

    Args:
        folder: the stage's backup folder (created when the first epoch ends).
        epochs: the stage's `ReproducibleEpochs` (batch order and dropout from the seed).
        stopping: the stage's `keras.callbacks.EarlyStopping`, whose state is backed up too
            (it must come before this callback in `fit`'s list).
    """

    def __init__(self, folder, epochs, stopping):
        super().__init__()
        self.folder, self.epochs, self.stopping = folder, epochs, stopping
        self._backup = keras.callbacks.BackupAndRestore(folder)
        self._logs = []

    def history(self):
        """The stage's history, {name: per-epoch values}: the epochs of the killed runs, then
        this run's (what `fit` returns holds only this run's)."""
        merged = {}
        for logs in self._logs:
            for key, value in logs.items():
                merged.setdefault(key, []).append(value)
        return merged

    def _state_path(self, epoch):
        return os.path.join(self.folder, f"early_stopping-{epoch}.npz")

    def on_train_begin(self, logs=None):
        self._logs = []
        for callback in (self._backup, self.epochs):
            callback.set_model(self.model)
        # After the early stopping's own on_train_begin (it comes first in the list), which
        # resets its counters: the restored ones replace them.
        self._backup.on_train_begin(logs)
        epoch = getattr(self.model, "_initial_epoch", None) or 0
        if epoch:
            self._restore(epoch)

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.on_epoch_begin(epoch, logs)

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

    def _save(self, epoch):
        stopping = self.stopping
        state = {"logs": json.dumps(self._logs), "wait": stopping.wait, "best": stopping.best,
                 "best_epoch": stopping.best_epoch, "stopped_epoch": stopping.stopped_epoch,
                 "has_best_weights": stopping.best_weights is not None}
        for index, weight in enumerate(stopping.best_weights or ()):
            state[f"weight_{index}"] = np.asarray(weight)
        os.makedirs(self.folder, exist_ok=True)
        temporary = self._state_path(epoch) + ".partial.npz"
        np.savez(temporary, **state)
        os.replace(temporary, self._state_path(epoch))

    def _restore(self, epoch):
        path = self._state_path(epoch)
        if not os.path.exists(path):
            raise FileNotFoundError(f"the backup in {self.folder} is of epoch {epoch} but "
                                    f"{path} is missing; remove the folder to start over.")
        with np.load(path) as state:
            self._logs = json.loads(str(state["logs"]))
            stopping = self.stopping
            stopping.wait, stopping.best = int(state["wait"]), float(state["best"])
            stopping.best_epoch = int(state["best_epoch"])
            stopping.stopped_epoch = int(state["stopped_epoch"])
            if bool(state["has_best_weights"]):
                count = sum(name.startswith("weight_") for name in state.files)
                stopping.best_weights = [state[f"weight_{index}"] for index in range(count)]
