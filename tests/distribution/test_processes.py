"""Multi-process training: 2 processes on localhost give the 1-process losses and weights.

JAX: two processes with one CPU device each form one mesh (`initialize_processes`, gloo
collectives), each feeds its rows of every global batch (`process_rows`), and training must
match one process fed the same global batches, validation mAP included. TensorFlow and torch:
multi-process training is refused with the documented error (docs/scaling.md says why).
"""

import importlib.util
import json
import os
import socket
import sys
import time
import types

import keras
import numpy as np
import pytest

from keras_cmr import distribution
from keras_cmr.distribution import launch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JOB = os.path.join(REPO_ROOT, "tests", "distribution", "multiprocess_job.py")
# The job's functions, for the one-process reference (the suite imports by path, not sys.path).
_spec = importlib.util.spec_from_file_location("multiprocess_job", JOB)
multiprocess_job = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(multiprocess_job)
BACKEND = keras.backend.backend()
# The bound on the whole 2-process job (about 25 s on 2 idle cores; more on a loaded machine).
TIMEOUT = 150


def port_is_free(port):
    """Nobody listens on `port` (SO_REUSEADDR: closed connections in TIME_WAIT do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("localhost", port))
        except OSError:
            return False
        return True


def report_of(output):
    return json.loads(next(line for line in output.splitlines()
                           if line.startswith("REPORT "))[len("REPORT "):])


def reference_run(weights):
    """One process fed the same global batches; and the mean of the per-process halves'
    first-step losses, which a loss over each process's rows alone would report."""
    (x, labels), val = multiprocess_job.make_data()
    report, final = {}, {}
    for kind in multiprocess_job.KINDS:
        model = multiprocess_job.build(kind)
        model.set_weights([weights[f"{kind}_{i}"] for i in range(len(model.weights))])
        first = {key: value[:multiprocess_job.GLOBAL_BATCH] for key, value in x.items()}
        local = model.evaluate(first, labels[:multiprocess_job.GLOBAL_BATCH], verbose=0,
                               batch_size=multiprocess_job.GLOBAL_BATCH // 2)
        loss, val_map, trained = multiprocess_job.train(
            model, x, labels, multiprocess_job.GLOBAL_BATCH, val)
        report[kind] = {"loss": loss, "val_avg_map": val_map, "local_mean": local}
        final.update({f"{kind}_{i}": w for i, w in enumerate(trained)})
    return report, final


def initial_weights(path):
    rng = np.random.default_rng(1)
    weights = {}
    for kind in multiprocess_job.KINDS:
        model = multiprocess_job.build(kind)
        weights.update({f"{kind}_{i}": rng.normal(scale=0.5, size=w.shape).astype(w.dtype)
                        for i, w in enumerate(model.get_weights())})
    np.savez(path, **weights)
    return weights


def test_multiprocess_training_on_this_backend(tmp_path, monkeypatch):
    """JAX: 2 processes train like 1 on the global batch; TensorFlow, torch: a clear refusal."""
    if BACKEND == "jax":
        # Each job process must have one device, whatever flags this process was given (the
        # data-parallel tests force several host devices with XLA_FLAGS); other flags stay.
        flags = [flag for flag in os.environ.get("XLA_FLAGS", "").split()
                 if not flag.startswith("--xla_force_host_platform_device_count")]
        monkeypatch.setenv("XLA_FLAGS", " ".join(flags))
        check_two_processes_train_like_one_on_the_global_batch(tmp_path)
    else:
        check_multiprocess_is_refused_clearly_outside_jax(monkeypatch)


def check_two_processes_train_like_one_on_the_global_batch(tmp_path):
    files, logs = tmp_path / "files", tmp_path / "logs"
    files.mkdir(), logs.mkdir()
    weights_path = str(files / "initial.npz")
    output = str(files / "final{process}.npz")  # the job names it by its process index
    weights = initial_weights(weights_path)
    port = launch.free_port()
    outputs = [logs / "out0", logs / "out1"]
    start = time.monotonic()
    processes = launch.start([sys.executable, JOB, weights_path, output], 2,
                             coordinator=f"localhost:{port}", outputs=outputs)
    # The reference runs here while the processes start (their imports take seconds).
    reference, expected = reference_run(weights)
    codes = launch.wait(processes, timeout=TIMEOUT - (time.monotonic() - start))
    seconds = time.monotonic() - start
    texts = [path.read_text() for path in outputs]
    assert codes == [0, 0], f"exit codes {codes} (-9: killed at the time limit or after " \
        "another process failed):\n" + "\n".join(text[-5000:] for text in texts)
    reports = [report_of(text) for text in texts]
    final = np.load(output.format(process=0))
    differences = {kind: max(float(np.max(np.abs(final[key] - expected[key])))
                             for key in final if key.startswith(kind))
                   for kind in multiprocess_job.KINDS}
    print(json.dumps({"reports": reports, "reference": reference, "seconds": seconds,
                      "weights_diff": differences}, indent=1))
    assert sorted(r["process"] for r in reports) == [0, 1]
    assert all(r["processes"] == 2 and r["batch_multiple"] == 1 for r in reports)
    # Only the chief wrote a file, and the processes ended in bounded time, freeing the port.
    assert sorted(os.listdir(files)) == ["final0.npz", "initial.npz"]
    assert all(process.poll() == 0 for process in processes) and port_is_free(port)
    for kind in multiprocess_job.KINDS:
        figures = [r[kind] for r in reports]
        # The same loss, validation mAP and weights in both processes, and as one process's.
        for value in figures:
            np.testing.assert_allclose(value["loss"], reference[kind]["loss"], rtol=1e-5)
            np.testing.assert_allclose(value["val_avg_map"], reference[kind]["val_avg_map"],
                                       rtol=1e-6)
        assert figures[0]["weights_sum"] == figures[1]["weights_sum"], kind
        # A loss over each process's own 8 pairs would differ from the global batch's.
        assert abs(reference[kind]["local_mean"] - reference[kind]["loss"]) > \
            0.05 * abs(reference[kind]["loss"]), kind
        moved = max(np.max(np.abs(final[key] - weights[key])) for key in final
                    if key.startswith(kind))
        assert moved > 1e-2, kind
        for key in (key for key in final if key.startswith(kind)):
            np.testing.assert_allclose(final[key], expected[key], atol=1e-5, err_msg=key)


def check_multiprocess_is_refused_clearly_outside_jax(monkeypatch):
    # TensorFlow and torch: a job of 2 processes is refused before anything starts, and a
    # one-process environment stays a plain run (process 0 of 1, the chief).
    monkeypatch.setenv(distribution.NUM_PROCESSES_ENV, "2")
    monkeypatch.setenv(distribution.COORDINATOR_ENV, "localhost:1")
    monkeypatch.setenv(distribution.PROCESS_ID_ENV, "0")
    assert distribution.multiprocess_requested()
    with pytest.raises(NotImplementedError, match=f"jax backend only, not on '{BACKEND}'"):
        distribution.initialize_processes()
    monkeypatch.setenv(distribution.NUM_PROCESSES_ENV, "1")
    distribution.initialize_processes()
    assert (distribution.process_count(), distribution.process_index()) == (1, 0)
    assert distribution.is_chief() and not distribution.multiprocess_requested()


def test_process_rows_split_every_global_batch_between_the_processes():
    # 2 processes, global batches of 4 over 10 rows: the last 2 rows fill no global batch.
    rows = [distribution.process_rows(10, 4, num_processes=2, index=p) for p in range(2)]
    np.testing.assert_array_equal(rows[0], [0, 1, 4, 5])
    np.testing.assert_array_equal(rows[1], [2, 3, 6, 7])
    np.testing.assert_array_equal(distribution.process_rows(5, 2), [0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"global batch size \(5\) must divide by the number "
                                         r"of processes \(2\)"):
        distribution.process_rows(10, 5, num_processes=2, index=0)
    with pytest.raises(ValueError, match="3 rows do not fill one global batch of 4"):
        distribution.process_rows(3, 4, num_processes=2, index=0)


def test_multiprocess_launcher_sets_the_job_and_stops_it_on_failure(tmp_path):
    # Each process sees the job's variables; the launcher fails when one process fails, and
    # kills a process that outlives the time limit (bounded, nothing left running).
    show = ("import os; print(os.environ['KERAS_DISTRIBUTION_JOB_ADDRESSES'], "
            "os.environ['KERAS_DISTRIBUTION_NUM_PROCESSES'], "
            "os.environ['KERAS_DISTRIBUTION_PROCESS_ID'], os.environ['JAX_PLATFORMS'])")
    outputs = [tmp_path / "out0", tmp_path / "out1"]
    processes = launch.start([sys.executable, "-c", show], 2, coordinator="localhost:1234",
                             outputs=outputs)
    assert launch.wait(processes, timeout=30) == [0, 0]
    assert [path.read_text() for path in outputs] == [f"localhost:1234 2 {index} cpu\n"
                                                      for index in range(2)]
    exit_by_id = "import os, sys; sys.exit(int(os.environ['KERAS_DISTRIBUTION_PROCESS_ID']))"
    assert launch.main(["-n", "2", "--", sys.executable, "-c", exit_by_id]) == 1
    start = time.monotonic()
    processes = launch.start([sys.executable, "-c", "import time; time.sleep(60)"], 2)
    assert launch.wait(processes, timeout=1) == [-9, -9]
    assert time.monotonic() - start < 20 and all(p.poll() is not None for p in processes)
    with pytest.raises(ValueError, match="num_processes must be at least 1, got 0"):
        launch.start(["true"], 0)


def test_multiprocess_shares_are_the_one_process_runs_global_batches():
    # 23 pairs, global batches of 6: 3 full batches and a last one of 5, split 2 / 2 between
    # 2 processes (its 5th pair left out: each process feeds as many).
    from keras_cmr.datasets import EpochOrder, RowBatches

    rng = np.random.default_rng(0)
    inputs = {"image": rng.normal(size=(23, 3)), "text": rng.normal(size=(23, 2))}
    labels = np.arange(23)
    one = RowBatches(inputs, labels, EpochOrder(23, 6, seed=4))
    shares = [RowBatches(inputs, labels, EpochOrder(23, 6, seed=4, num_processes=2,
                                                    process_index=p)) for p in range(2)]
    alone = RowBatches(inputs, labels, EpochOrder(23, 6, seed=4, num_processes=1))
    assert len(one) == len(alone) == len(shares[0]) == 4
    for epoch in (1, 2):
        for batches in (one, alone, *shares):
            batches.epoch = epoch  # as ReproducibleEpochs sets it
        for index in range(4):
            x, y = one[index]
            # Each epoch's order is the seeded permutation, cut into batches of 6.
            permutation = np.random.default_rng([4, epoch]).permutation(23)
            np.testing.assert_array_equal(y, permutation[index * 6:(index + 1) * 6])
            np.testing.assert_array_equal(alone[index][1], y)
            np.testing.assert_array_equal(alone[index][0]["text"], x["text"])
            halves = [share[index] for share in shares]
            joined = np.concatenate([half[1] for half in halves])
            np.testing.assert_array_equal(joined, y[:4] if index == 3 else y)
            np.testing.assert_array_equal(np.concatenate([h[0]["image"] for h in halves]),
                                          inputs["image"][joined])
    # Another epoch, another order; a pair left out of one epoch's last batch is not of all.
    fresh = RowBatches(inputs, labels, EpochOrder(23, 6, seed=4))
    assert not np.array_equal(one[0][1], fresh[0][1])
    with pytest.raises(ValueError, match=r"global batch size \(5\) must divide by the number "
                                         r"of processes \(2\)"):
        EpochOrder(23, 5, seed=0, num_processes=2, process_index=0)
    # A last batch smaller than the process count is left out whole.
    assert len(EpochOrder(23, 22, 0, num_processes=2, process_index=1)) == 1


def test_multiprocess_seeded_epochs_feed_fit_selected_the_shares(monkeypatch):
    # keras-cmr train with 2 processes: process 1 fits on its share of the one-process
    # batches (SeededEpochs), and every epoch reseeds like a one-process run.
    from keras_cmr.callbacks import ReproducibleEpochs
    from keras_cmr.config import TrainingConfig
    from keras_cmr.datasets import EpochOrder, RowBatches, load_digits_two_view
    from keras_cmr.experiment import SeededEpochs
    from keras_cmr.experiment.protocol import fit_selected

    monkeypatch.setattr(distribution, "process_count", lambda: 2)
    monkeypatch.setattr(distribution, "process_index", lambda: 1)
    data = load_digits_two_view().with_validation(0.1, seed=0)
    fitted = {}

    class Recording:
        built = True

        def compile(self, **kwargs):
            pass

        def training_inputs(self, x, labels):
            return x

        def build_for(self, inputs):
            pass

        def fit(self, **kwargs):
            fitted.update(kwargs)
            return types.SimpleNamespace(history={"val_avg_map": [0.5], "loss": [2.0]})

    history = fit_selected(Recording(), data, TrainingConfig(batch_size=100),
                           plan=SeededEpochs(seed=3))
    assert history == {"val_avg_map": [0.5], "loss": [2.0]}
    batches = fitted["x"]
    assert isinstance(batches, RowBatches) and "y" not in fitted
    assert batches.order == EpochOrder(len(data.train.labels), 100, 3, num_processes=2,
                                       process_index=1)
    assert len(batches.labels) == len(data.train.labels)  # every pair, not a shard
    reseeding = [c for c in fitted["callbacks"] if isinstance(c, ReproducibleEpochs)]
    assert len(reseeding) == 1 and reseeding[0].data is batches and reseeding[0].seed == 3
