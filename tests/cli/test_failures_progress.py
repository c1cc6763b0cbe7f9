"""Failed training ends the command with status 3; compare's progress, failures and --resume;
the multi-process wiring of `train` (one process changes nothing; only the chief writes)."""

import dataclasses
import json

import numpy as np
import pytest

from keras_cmr import distribution
from keras_cmr.cli.main import TRAINING_FAILED, build_parser, main
from keras_cmr.cli.options import training_config
from keras_cmr.datasets import RowBatches, load_digits_two_view
from keras_cmr.experiment import TrainingConfig, fit_selected, format_progress, format_table
from keras_cmr.experiment.protocol import stage_scope
from keras_cmr.experiment.tables import format_duration

FAST = ["--epochs", "2", "--patience", "1", "--embedding-dim", "16"]
DIVERGING = ["--learning-rate", "1e12", "--epochs", "3", "--embedding-dim", "16", "--quiet"]


def files_under(folder):
    return sorted(path.name for path in folder.rglob("*") if path.is_file())


def test_a_diverged_train_exits_3_and_saves_nothing(tmp_path, capsys):
    output = tmp_path / "run"
    assert main(["train", "--method", "contrastive", *DIVERGING, "--output", str(output)]) == 3
    error = capsys.readouterr().err
    assert error.startswith("keras-cmr train: training failed: ") and "Traceback" not in error
    assert len(error.strip().splitlines()) == 1
    assert not output.exists() or files_under(output) == []


def test_compare_records_a_failed_run_and_exits_3(tmp_path, capsys):
    out = tmp_path / "compare.json"
    assert main(["compare", "--methods", "contrastive", "--seeds", "1", *DIVERGING,
                 "--json", str(out)]) == TRAINING_FAILED == 3
    printed = capsys.readouterr().out
    assert "FAILED" in printed and "failed: contrastive seed 0" in printed
    content = json.loads(out.read_text())
    [run] = content["runs"]
    assert run["method"] == "contrastive" and run["seed"] == 0 and run["failure"]
    assert content["table"] == {}


def test_compare_resume_skips_finished_runs_and_prints_progress(tmp_path, capsys):
    argv = ["compare", "--methods", "source,contrastive", "--seeds", "1", *FAST]
    config = training_config(build_parser().parse_args(argv))
    finished = {"method": "source", "seed": 0,
                "test": {"i2t_map": 0.25, "t2i_map": 0.75, "avg_map": 0.5},
                "best_val_avg_map": 0.5, "epochs": 2, "seconds": 3.0,
                "history": {"source": {"epochs": 2, "best_val_avg_map": 0.5,
                                       "val_avg_map": [0.4, 0.5], "loss": [2.0, 1.5]}}}
    out = tmp_path / "compare.json"
    out.write_text(json.dumps({"data": "digits", "methods": ["source", "contrastive"],
                               "seeds": 1, "config": dataclasses.asdict(config),
                               "runs": [finished]}))
    assert main([*argv, "--json", str(out), "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "[2/2] contrastive seed 0: done, " in printed and "[1/2]" not in printed
    content = json.loads(out.read_text())
    assert content["runs"][0] == finished and content["dataset"] == "digits"
    assert [run["method"] for run in content["runs"]] == ["source", "contrastive"]
    assert content["table"]["source"]["avg_map"] == 0.5
    # Other settings than the file's: refused, the file left as it is.
    assert main(["compare", "--methods", "source,contrastive", "--seeds", "2", *FAST,
                 "--json", str(out), "--resume"]) == 2
    assert "other settings (seeds)" in capsys.readouterr().err
    # A run that is not one: refused, by the entry it lacks, before any training.
    del content["runs"][0]["history"]
    out.write_text(json.dumps(content))
    assert main([*argv, "--json", str(out), "--resume"]) == 2
    assert f"--resume: {out}: a run has no 'history' entry" in capsys.readouterr().err


def test_progress_lines_and_durations():
    assert format_duration(42.4) == "42 s"
    assert format_duration(125) == "2 min 05 s"
    assert format_duration(3725) == "1 h 02 min"
    assert format_progress(2, 5, "met", 1, 125.0, [50.0, 70.0]) == (
        "[2/5] met seed 1: done, 2 min 05 s elapsed, about 3 min 00 s left (3 runs)")
    assert format_progress(4, 5, "met", 1, 10.0, [3.0]) == (
        "[4/5] met seed 1: done, 10 s elapsed, about 3 s left (1 run)")
    assert format_progress(5, 5, "kim", 2, 10.0, [2.0]) == "[5/5] kim seed 2: done, 10 s elapsed"


def test_a_one_seed_row_shows_no_spread():
    row = {"i2t_map": 0.85654, "t2i_map": 0.5, "avg_map": 0.678, "best_val_avg_map": 0.7}
    one = format_table({"met": {**row, "seeds": 1, **{k + "_std": 0.0 for k in row}}})
    three = format_table({"met": {**row, "seeds": 3, **{k + "_std": 0.01 for k in row}}})
    assert "0.8565" in one and "+-" not in one
    assert "0.8565 +- 0.010" in three
    assert len(one.splitlines()[1]) == len(three.splitlines()[1])


class RecordingModel:
    """Stands in for a model: records what `fit_selected` compiles and fits with (the rest of
    the trainer interface `fit_selected` calls does nothing)."""

    def compile(self, **kwargs):
        pass

    def training_inputs(self, x, labels):
        return x

    def build_for(self, inputs):
        pass

    def fit(self, **kwargs):
        self.fitted = kwargs
        return type("History", (), {"history": {"val_avg_map": [0.5]}})()


@pytest.mark.parametrize("processes", [1, 2])
def test_each_process_feeds_its_rows_of_every_global_batch(monkeypatch, processes):
    monkeypatch.setattr(distribution.processes, "process_count", lambda: processes)
    monkeypatch.setattr(distribution.processes, "process_index", lambda: processes - 1)
    monkeypatch.setattr(distribution, "process_count", lambda: processes)
    monkeypatch.setattr(distribution, "process_index", lambda: processes - 1)
    data = load_digits_two_view().with_validation(0.1, seed=0)
    model = RecordingModel()
    fit_selected(model, data, TrainingConfig(batch_size=100))
    fitted = model.fitted
    batches = fitted["x"]
    assert isinstance(batches, RowBatches) and fitted["shuffle"] is False
    assert (batches.order.num_processes, batches.order.process_index) == (processes,
                                                                         processes - 1)
    count = len(data.train.labels)
    for epoch in (1, 2):
        batches.epoch = epoch
        order = np.random.default_rng([batches.order.seed, epoch]).permutation(count)
        for index in range(len(batches)):
            global_rows = order[index * 100:(index + 1) * 100]
            width = len(global_rows) // processes
            share = global_rows[(processes - 1) * width:processes * width]
            inputs, labels = batches[index]
            np.testing.assert_array_equal(inputs["image"], data.train.image[share])
            np.testing.assert_array_equal(labels, data.train.labels[share])
    if processes == 1:
        with stage_scope() as scope:
            assert scope is None  # no distribution scope in a one-process run


def test_only_the_chief_process_writes_the_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(distribution, "is_chief", lambda: False)
    output = tmp_path / "run"
    assert main(["train", "--method", "contrastive", *FAST, "--quiet",
                 "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "contrastive" in printed and "saved in" not in printed and "took" in printed
    assert not (output / "model.keras").exists() and not (output / "figures.json").exists()
