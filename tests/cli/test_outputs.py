"""Nothing is lost between runs: a command refuses, before any work, to replace a result that
its output already holds, unless --overwrite; --overwrite replaces it only once the new result
is written. Outputs that cannot be written (a file where a folder goes, and the reverse) get
one line before any work too."""

import argparse
import json
import os

import numpy as np
import pytest

import keras_cmr
from keras_cmr import saving
from keras_cmr.cli.main import COMMANDS, build_parser, main
from keras_cmr.cli.train import FINISHED_RUN_FILES, check
from keras_cmr.datasets import CrossModalDataset, CrossModalSplit, save_npz
from keras_cmr.models import CrossModalEncoder

FAST = ["--method", "contrastive", "--epochs", "1", "--embedding-dim", "8", "--quiet"]
DIVERGING = ["--method", "contrastive", "--learning-rate", "1e12", "--epochs", "3",
             "--embedding-dim", "8", "--quiet"]


@pytest.fixture
def no_work(monkeypatch):
    """Loading data or a model fails the test: the refusals come before any work."""
    def refuse(*args, **kwargs):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr(keras_cmr.datasets, "load_dataset", refuse)
    monkeypatch.setattr(saving, "load_model", refuse)


def one_error_line(argv, capsys):
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and "Traceback" not in error, error
    assert error.startswith(f"keras-cmr {argv[0]}: error: "), error
    return error


def contents(folder):
    """{relative path: bytes} of every file under `folder`."""
    return {os.path.relpath(os.path.join(root, name), folder):
            open(os.path.join(root, name), "rb").read()
            for root, _, names in os.walk(folder) for name in names}


@pytest.mark.parametrize("marker", FINISHED_RUN_FILES)
def test_train_refuses_a_folder_that_holds_a_finished_run(tmp_path, capsys, no_work, marker):
    output = tmp_path / "run"
    output.mkdir()
    (output / marker).write_text("the first run's")
    error = one_error_line(["train", *FAST, "--label-noise", "0.4", "--output", str(output)],
                           capsys)
    assert f"already holds {marker}: pass --overwrite to replace it" in error
    assert contents(output) == {marker: b"the first run's"}


def test_train_refuses_the_default_folder_of_a_finished_run(tmp_path, capsys, no_work,
                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "met-seed0").mkdir(parents=True)
    (tmp_path / "runs" / "met-seed0" / "figures.json").write_text("{}")
    error = one_error_line(["train", "--label-noise", "0.4"], capsys)
    assert os.path.join("runs", "met-seed0") in error and "--overwrite" in error


def test_train_refuses_a_backup_without_resume_or_overwrite(tmp_path, capsys, no_work):
    output = tmp_path / "run"
    (output / "backup" / "stage-0").mkdir(parents=True)
    error = one_error_line(["train", *FAST, "--output", str(output)], capsys)
    assert "backup of an interrupted run" in error
    assert "--resume" in error and "--overwrite" in error


@pytest.mark.parametrize("files, resume, overwrite, refused", [
    (["figures.json"], False, False, "already holds"),
    (["figures.json"], True, False, "already holds"),  # no backup: --resume starts afresh
    (["figures.json"], False, True, None),
    # A backup exists only if its run was free to replace the finished run: --resume goes on.
    (["figures.json", "backup/"], True, False, None),
    (["backup/"], False, False, "interrupted run"),
    (["backup/"], True, False, None),
    (["backup/"], False, True, None),
    (["notes.txt"], False, False, None),  # other files are not a finished run
    ([], False, False, None),
])
def test_which_train_outputs_are_refused(tmp_path, files, resume, overwrite, refused):
    output = tmp_path / "run"
    output.mkdir()
    for name in files:
        if name.endswith("/"):
            (output / name).mkdir()
        else:
            (output / name).write_text("x")
    args = argparse.Namespace(output=str(tmp_path / "{method}"), method="run", seed=0,
                              resume=resume, overwrite=overwrite)
    if refused is None:
        check(args)
    else:
        with pytest.raises(ValueError, match=refused):
            check(args)


def test_overwrite_replaces_a_finished_run_only_once_the_new_one_is_written(tmp_path, capsys):
    output = tmp_path / "run"
    (output / "backup" / "stage-0").mkdir(parents=True)
    (output / "backup" / "stage-0" / "leftover").write_text("an interrupted run's")
    old = {"figures.json": b'{"old": true}', "model.keras": b"old model",
           "source_encoder.keras": b"old source", "notes.txt": b"the user's"}
    for name, content in old.items():
        (output / name).write_bytes(content)

    # A run that fails leaves the finished run as it was (the dropped backup aside).
    assert main(["train", *DIVERGING, "--overwrite", "--output", str(output)]) == 3
    assert contents(output) == old
    capsys.readouterr()

    assert main(["train", *FAST, "--overwrite", "--output", str(output)]) == 0
    assert "saved in" in capsys.readouterr().out
    # The new run's files; the old run's source encoder (contrastive trains none) is gone;
    # the user's file stays; no backup or temporary folder is left.
    assert sorted(os.listdir(output)) == ["encoder.keras", "figures.json", "model.keras",
                                          "notes.txt"]
    assert (output / "notes.txt").read_bytes() == b"the user's"
    figures = json.loads((output / "figures.json").read_text())
    assert [result["method"] for result in figures["results"]] == ["contrastive"]
    assert saving.load_model(str(output / "model.keras")).built

    # A second run with other options is refused and changes nothing.
    before = contents(output)
    assert main(["train", *FAST, "--label-noise", "0.4", "--output", str(output)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert contents(output) == before


def test_compare_refuses_an_existing_results_file_unless_resumed_or_overwritten(
        tmp_path, capsys, no_work):
    out = tmp_path / "compare.json"
    out.write_text('{"runs": []}')
    argv = ["compare", "--methods", "contrastive", "--seeds", "1", "--epochs", "1"]
    error = one_error_line([*argv, "--json", str(out)], capsys)
    assert "continue that comparison with --resume" in error and "--overwrite" in error
    assert out.read_text() == '{"runs": []}'
    assert "--overwrite needs --json" in one_error_line([*argv, "--overwrite"], capsys)
    assert "--resume needs --json" in one_error_line([*argv, "--resume"], capsys)
    with pytest.raises(SystemExit) as raised:
        main([*argv, "--json", str(out), "--resume", "--overwrite"])
    assert raised.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_compare_overwrite_replaces_the_results_file(tmp_path, capsys):
    out = tmp_path / "compare.json"
    out.write_text('{"runs": [{"method": "old"}]}')
    assert main(["compare", "--methods", "contrastive", "--seeds", "1", *FAST[2:],
                 "--json", str(out), "--overwrite"]) == 0
    content = json.loads(out.read_text())
    assert [run["method"] for run in content["runs"]] == ["contrastive"]
    assert set(content["table"]) == {"contrastive"}


@pytest.fixture
def outputs(tmp_path):
    """An existing file, an existing folder with a file in it, and the names they give."""
    existing = tmp_path / "existing.npz"
    existing.write_bytes(b"a finished result")
    folder = tmp_path / "folder"
    folder.mkdir()
    for name in ("precision_recall.png", "index.json"):
        (folder / name).write_bytes(b"a finished result")
    return {"file": str(existing), "folder": str(folder),
            "under": str(existing / "out.npz"), "new": str(tmp_path / "new")}


# (argv with {file}/{folder}/{under}/{new} for the outputs, the error's words)
REFUSED = [
    (["evaluate", "model.keras", "--json", "{file}"], "--json '{file}' exists: pass --overwrite"),
    (["evaluate", "model.keras", "--json", "{folder}"], "--json '{folder}' is a folder"),
    (["evaluate", "model.keras", "--json", "{under}"], "lies under '{file}', which is a file"),
    (["compare", "--json", "{folder}", "--overwrite"], "--json '{folder}' is a folder"),
    (["train", "--output", "{file}"], "--output '{file}' is a file, not a folder"),
    (["train", "--output", "{under}"], "lies under '{file}', which is a file"),
    (["plot", "results.json", "--out", "{folder}"], "already holds precision_recall.png"),
    (["plot", "results.json", "--out", "{file}", "--overwrite"], "is a file, not a folder"),
    (["index", "encoder.keras", "--out", "{folder}"], "already holds index.json, "
                                                      "precision_recall.png: pass --overwrite"),
    (["index", "encoder.keras", "--out", "{file}", "--overwrite"], "is a file, not a folder"),
    (["search", "{new}", "encoder.keras", "--out", "{file}"], "--out '{file}' exists"),
    (["extract-features", "--data", "{new}", "--out", "{file}"], "--out '{file}' exists"),
    (["extract-features", "--data", "{new}", "--out", "{under}"], "which is a file"),
]


@pytest.mark.parametrize("argv, message", REFUSED)
def test_outputs_that_would_replace_a_result_or_cannot_be_written_are_refused_first(
        capsys, no_work, outputs, argv, message):
    before = open(outputs["file"], "rb").read()
    error = one_error_line([part.format(**outputs) for part in argv], capsys)
    assert message.format(**outputs) in error
    assert open(outputs["file"], "rb").read() == before
    assert sorted(os.listdir(outputs["folder"])) == ["index.json", "precision_recall.png"]


# Every command writes a result: each with the smallest command line that parses.
WRITING_COMMANDS = [
    ["train"], ["evaluate", "model.keras"], ["compare"], ["plot", "results.json"],
    ["extract-features", "--data", "pairs", "--out", "features.npz"],
    ["index", "encoder.keras", "--out", "index"],
    ["search", "index", "encoder.keras", "--out", "results.jsonl"]]


@pytest.mark.parametrize("argv", WRITING_COMMANDS)
def test_every_command_takes_overwrite(argv):
    assert len(WRITING_COMMANDS) == len(COMMANDS)
    parser = build_parser()
    assert parser.parse_args(argv).overwrite is False
    assert parser.parse_args([*argv, "--overwrite"]).overwrite is True


def small_data(path):
    """A small npz data set (6-wide images, 5-wide texts, 3 classes); returns it."""
    rng = np.random.default_rng(0)

    def split(rows, name):
        return CrossModalSplit(rng.normal(size=(rows, 6)), rng.normal(size=(rows, 5)),
                               np.arange(rows) % 3, name=name)

    dataset = CrossModalDataset(train=split(12, "train"), test=split(9, "test"),
                                num_classes=3, name="pairs")
    save_npz(dataset, str(path))
    return dataset


def test_evaluate_index_and_search_overwrite_their_outputs(tmp_path, capsys):
    encoder = CrossModalEncoder.projection(embedding_dim=4, hidden_dims=(), dropout=0.0)
    encoder({"image": np.zeros((1, 6)), "text": np.zeros((1, 5))})
    saving.save_model(encoder, str(tmp_path / "encoder.keras"))
    encoder, data = str(tmp_path / "encoder.keras"), str(tmp_path / "pairs.npz")
    dataset = small_data(data)
    report = tmp_path / "evaluation.json"
    report.write_text("{}")
    assert main(["evaluate", encoder, "--data", data, "--json", str(report),
                 "--overwrite"]) == 0
    assert {"i2t_map", "t2i_map", "avg_map"} <= set(json.loads(report.read_text()))

    index = str(tmp_path / "index")
    assert main(["index", encoder, "--data", data, "--out", index, "--quiet"]) == 0
    assert "already holds" in one_error_line(
        ["index", encoder, "--data", data, "--out", index, "--quiet"], capsys)
    assert main(["index", encoder, "--data", data, "--split", "train", "--out", index,
                 "--quiet", "--overwrite"]) == 0
    assert json.loads((tmp_path / "index" / "gallery.json").read_text())["split"] == "train"

    results = tmp_path / "results.jsonl"
    results.write_text("old\n")
    assert main(["search", index, encoder, "--queries", data, "--top-k", "3", "--out",
                 str(results), "--quiet", "--overwrite"]) == 0
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(lines) == dataset.test.num_pairs
    assert all(len(line["ids"]) == 3 for line in lines)
