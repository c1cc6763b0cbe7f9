"""A training process killed mid-epoch resumes and ends with the uninterrupted run's weights."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

from keras_cmr.callbacks import ReproducibleEpochs

# Trains 4 epochs with dropout; "kill-me" writes a marker in the middle of epoch 3 and waits
# there to be killed. The weights land in an .npz once training ends.
CHILD = textwrap.dedent("""
    import os, sys, time
    import keras, numpy as np
    from keras_cmr.callbacks import ReproducibleEpochs
    from keras_cmr.datasets import PairBatches, load_digits_two_view
    from keras_cmr.experiment import TrainingConfig, build_model

    mode, backup, marker, out = sys.argv[1:5]
    keras.utils.set_random_seed(0)
    data = load_digits_two_view()
    config = TrainingConfig(embedding_dim=16, hidden_dims=(16,), dropout=0.3)
    model = build_model("contrastive", data.num_classes, config)
    model.compile(optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5))
    batches = PairBatches.from_split(data.train, batch_size=100, seed=0)
    model(batches[0][0])  # BackupAndRestore restores into a built model

    class WaitToBeKilled(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if mode == "kill-me" and self.epoch == 2 and batch == 3:
                open(marker, "w").close()
                time.sleep(600)

    callbacks = [ReproducibleEpochs(seed=0, data=batches), WaitToBeKilled()]
    if backup != "none":
        callbacks.insert(0, keras.callbacks.BackupAndRestore(backup))
    model.fit(batches, epochs=4, shuffle=False, callbacks=callbacks, verbose=0)
    np.savez(out, *[keras.ops.convert_to_numpy(v) for v in model.trainable_weights])
""")


def run_child(tmp_path, mode, backup, out):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return subprocess.Popen([sys.executable, str(script), mode, str(backup),
                             str(tmp_path / "marker"), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process):
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    backup = tmp_path / "backup"
    killed = run_child(tmp_path, "kill-me", backup, tmp_path / "never.npz")
    uninterrupted = run_child(tmp_path, "plain", "none", tmp_path / "uninterrupted.npz")
    deadline = time.monotonic() + 300
    while not (tmp_path / "marker").exists():
        assert killed.poll() is None, killed.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "the child never reached epoch 3"
        time.sleep(0.2)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    assert (backup / "training_metadata.json").read_text().startswith('{"epoch": 2')
    finish(uninterrupted)

    finish(run_child(tmp_path, "resume", backup, tmp_path / "resumed.npz"))
    resumed = np.load(tmp_path / "resumed.npz")
    expected = np.load(tmp_path / "uninterrupted.npz")
    assert len(resumed.files) == len(expected.files) > 0
    for name in expected.files:
        np.testing.assert_array_equal(resumed[name], expected[name])
    # BackupAndRestore removes its backup once training has finished.
    assert not (backup / "training_metadata.json").exists()


def test_reproducible_epochs_rejects_bad_arguments():
    with pytest.raises(ValueError, match="seed"):
        ReproducibleEpochs(seed=-1)
    with pytest.raises(ValueError, match="PairBatches"):
        ReproducibleEpochs(seed=0, data=np.zeros((4, 2)))


def test_epoch_randomness_depends_on_seed_and_epoch_only():
    layer = keras.layers.Dropout(0.5)
    model = keras.Sequential([keras.Input((64,)), layer])
    callback = ReproducibleEpochs(seed=3)
    callback.set_model(model)
    masks = []
    for epoch in (1, 2, 1):
        callback.on_epoch_begin(epoch)
        masks.append(keras.ops.convert_to_numpy(layer(np.ones((2, 64)), training=True)))
    np.testing.assert_array_equal(masks[0], masks[2])
    assert not np.array_equal(masks[0], masks[1])
