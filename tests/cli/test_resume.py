"""A killed `keras-cmr train` resumes to the uninterrupted run's result; reproducible epochs."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_cmr.callbacks import ReproducibleEpochs
from keras_cmr.cli import quiet
from keras_cmr.cli.main import main

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Six epochs of a one-stage method with dropout (0.1, the default); patience 2, so the
# early-stopping counters carried over the kill decide when the run stops.
TRAIN = ["train", "--method", "contrastive", "--epochs", "6", "--patience", "2",
         "--embedding-dim", "8", "--quiet"]


def keras_cmr(*argv):
    """`keras-cmr ARGV` in a child process, as the console script runs it."""
    env = {key: value for key, value in os.environ.items()
           if key != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, env.get("PYTHONPATH")]))
    return subprocess.Popen([sys.executable, "-c",
                             "import sys, keras_cmr_cli; sys.exit(keras_cmr_cli.main())",
                             *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=REPO_ROOT)


def finish(process):
    output, errors = process.communicate(timeout=300)
    assert process.returncode == 0, errors[-3000:]
    return output, errors


def test_a_killed_train_command_resumes_to_the_uninterrupted_result(tmp_path, capsys):
    killed_output, plain_output = tmp_path / "killed", tmp_path / "plain"
    killed = keras_cmr(*TRAIN, "--output", str(killed_output))
    metadata = killed_output / "backup" / "stage-0" / "training_metadata.json"
    deadline = time.monotonic() + 300
    while not metadata.exists():
        assert killed.poll() is None, killed.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the run never backed up an epoch"
        time.sleep(0.05)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    assert not (killed_output / "figures.json").exists()
    # Without --resume the backup is not overwritten.
    assert main([*TRAIN, "--output", str(killed_output)]) == 2
    assert "--resume" in capsys.readouterr().err
    # The uninterrupted run, in this process (a third child would pay another start-up of
    # the frameworks).
    assert main([*TRAIN, "--output", str(plain_output)]) == 0
    assert f"saved in {plain_output}" in capsys.readouterr().out
    printed, errors = finish(keras_cmr(*TRAIN, "--output", str(killed_output), "--resume"))
    # The frameworks' C++ start-up lines stay off stderr (Keras imports TensorFlow during
    # `fit` on JAX and PyTorch too).
    for line in errors.splitlines():
        assert not quiet.START_UP_LINE.match(line), line
        for marker in ("oneDNN", "cudart_stub", "cpu_feature_guard", "cuInit", "absl::"):
            assert marker not in line, line
    assert f"saved in {killed_output}" in printed and "took" in printed
    expected = json.loads((plain_output / "figures.json").read_text())["results"][0]
    result = json.loads((killed_output / "figures.json").read_text())["results"][0]
    assert result["test"] == expected["test"]
    assert result["history"] == expected["history"] and result["epochs"] == expected["epochs"]
    assert not (killed_output / "backup").exists()


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
