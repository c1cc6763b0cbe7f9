"""The keras-cmr command: train, evaluate, compare, and its errors."""

import json
import os

import numpy as np
import pytest

from keras_cmr.cli.main import main

FAST = ["--epochs", "2", "--patience", "1", "--embedding-dim", "16", "--quiet"]


def test_train_met_on_the_default_data_writes_models_and_figures(tmp_path, capsys):
    output = tmp_path / "run"
    assert main(["train", *FAST, "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "source (stage 1)" in printed and "met" in printed
    for name in ("model.keras", "encoder.keras", "source_encoder.keras", "figures.json"):
        assert (output / name).is_file(), name
    figures = json.loads((output / "figures.json").read_text())
    met, source = figures["results"][1], figures["results"][0]
    assert met["method"] == "met" and source["method"] == "source (stage 1)"
    for result in (met, source):
        test = result["test"]
        assert 0.0 < test["i2t_map"] <= 1.0 and 0.0 < test["t2i_map"] <= 1.0
        assert test["avg_map"] == pytest.approx((test["i2t_map"] + test["t2i_map"]) / 2)
    assert len(met["history"]["met"]["val_avg_map"]) == met["epochs"] <= 2

    # The served encoder gives the same test figures through `evaluate`.
    report = tmp_path / "evaluation.json"
    assert main(["evaluate", str(output / "encoder.keras"), "--json", str(report)]) == 0
    evaluated = json.loads(report.read_text())
    assert evaluated["avg_map"] == pytest.approx(met["test"]["avg_map"], abs=1e-6)


def test_compare_tabulates_every_method_and_seed(tmp_path, capsys):
    out = tmp_path / "compare.json"
    assert main(["compare", "--methods", "contrastive,source", "--seeds", "2", *FAST,
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "contrastive" in printed and "mean +- std over 2 seed(s)" in printed
    table = json.loads(out.read_text())["table"]
    assert set(table) == {"contrastive", "source"}
    runs = json.loads(out.read_text())["runs"]
    values = [run["test"]["avg_map"] for run in runs if run["method"] == "source"]
    assert table["source"]["avg_map"] == pytest.approx(np.mean(values))
    assert table["source"]["avg_map_std"] == pytest.approx(np.std(values, ddof=1))


@pytest.mark.parametrize("argv, message", [
    (["compare", "--methods", "nonsense"], "unknown method"),
    (["compare", "--seeds", "0"], "--seeds"),
    (["train", "--data", "imagenet"], "digits"),
    (["train", "--data", "npz:/nowhere/data.npz"], "/nowhere/data.npz"),
    (["train", "--epochs", "0"], "epochs"),
    (["evaluate", "/nowhere/model.keras"], "no model file"),
])
def test_bad_input_gets_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


def test_evaluate_refuses_a_file_that_is_not_a_keras_archive(tmp_path, capsys):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"not a zip archive at all")
    assert main(["evaluate", str(path)]) == 2
    assert "not a .keras archive" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["train", "--no-such-option"], ["frobnicate"], []])
def test_unknown_options_and_commands_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    assert "usage: keras-cmr" in capsys.readouterr().err
