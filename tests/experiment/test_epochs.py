"""Epoch plans: stage backups every `interval` seconds, resumed to the same weights."""

import keras
import numpy as np
import pytest

from keras_cmr import losses
from keras_cmr.experiment import SeededEpochs, epochs
from keras_cmr.models import CrossModalEncoder, PairwiseModel


def fitted(pairs, plan, epochs_to_run=4):
    """(weights, the epochs this fit ran, the stage history) of a small contrastive model
    fitted on the plan's first stage."""
    keras.utils.set_random_seed(0)
    model = PairwiseModel(CrossModalEncoder.projection(4, hidden_dims=(8,)),
                          losses.ContrastiveLoss())
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, labels = pairs
    stopping = keras.callbacks.EarlyStopping(monitor="loss", patience=100)
    feed = plan.stage(model, x, labels, 10, stopping)
    ran = []
    history = model.fit(**feed.data, epochs=epochs_to_run, verbose=0, callbacks=[
        stopping, *feed.callbacks,
        keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: ran.append(epoch))])
    return ([np.asarray(weight) for weight in model.weights], ran,
            feed.history(history.history))


@pytest.mark.parametrize("interval, backups", [(0.0, 4), (1e9, 1)])
def test_a_stage_is_backed_up_first_then_every_interval(pairs, tmp_path, monkeypatch,
                                                        interval, backups):
    saved = []
    monkeypatch.setattr(epochs.StageBackup, "_save",
                        lambda self, epoch: saved.append(epoch))
    fitted(pairs, SeededEpochs(0, backup=str(tmp_path), backup_interval=interval))
    assert saved == [1, 2, 3, 4][:backups]


def test_a_stage_resumed_from_an_early_backup_replays_to_the_same_weights(pairs, tmp_path,
                                                                           monkeypatch):
    """Killed after epoch 3 with its only backup at epoch 1: the resumed stage replays
    epochs 2 to 4 and ends with the weights of a stage never interrupted."""
    expected, _, expected_history = fitted(pairs, SeededEpochs(0))
    folder = tmp_path / "backup"

    class Killed(Exception):
        pass

    def kill_after_epoch_3(self, epoch, logs=None):
        if epoch == 2:
            raise Killed
    with monkeypatch.context() as patch:
        patch.setattr(epochs.StageBackup, "on_epoch_begin",
                      lambda self, epoch, logs=None: (kill_after_epoch_3(self, epoch - 1),
                                                      self.epochs.on_epoch_begin(epoch, logs)))
        with pytest.raises(Killed):
            fitted(pairs, SeededEpochs(0, backup=str(folder), backup_interval=1e9))
    assert (folder / "stage-0" / "training_metadata.json").read_text().count('"epoch": 1')
    resumed, ran, history = fitted(pairs, SeededEpochs(0, backup=str(folder),
                                                       backup_interval=1e9))
    assert ran == [1, 2, 3]
    assert history["loss"] == expected_history["loss"]
    for got, want in zip(resumed, expected):
        np.testing.assert_array_equal(got, want)


def test_a_stage_killed_while_backing_up_resumes_from_the_last_whole_backup(
        pairs, tmp_path, monkeypatch):
    """Killed as the epoch-2 backup puts each of its files in place (the files before it
    written): the backup of epoch 1 stays whole, and the resumed stage replays epochs 2 to 4
    to the weights of a stage never interrupted."""
    expected, _, expected_history = fitted(pairs, SeededEpochs(0))
    replace = epochs.os.replace

    class Killed(Exception):
        pass

    # (file, its renaming that is killed: the metadata's first is epoch 1's)
    for killed_at, nth in (("epoch-2.weights.h5", 1), ("early_stopping-2.npz", 1),
                           ("training_metadata.json", 2)):
        folder = tmp_path / killed_at
        renamed = []

        def replace_or_die(source, target):
            if str(target).endswith(killed_at):
                renamed.append(target)
                if len(renamed) == nth:
                    raise Killed
            replace(source, target)
        with monkeypatch.context() as patch:
            patch.setattr(epochs.os, "replace", replace_or_die)
            with pytest.raises(Killed):
                fitted(pairs, SeededEpochs(0, backup=str(folder), backup_interval=0.0))
        metadata = folder / "stage-0" / "training_metadata.json"
        assert metadata.read_text() == '{"epoch": 1}', killed_at
        resumed, ran, history = fitted(pairs, SeededEpochs(0, backup=str(folder),
                                                           backup_interval=0.0))
        assert ran == [1, 2, 3], killed_at
        assert history["loss"] == expected_history["loss"], killed_at
        for got, want in zip(resumed, expected):
            np.testing.assert_array_equal(got, want, err_msg=killed_at)
        assert not folder.joinpath("stage-0").exists(), killed_at
