"""The keras-cmr command: train, evaluate, compare, and its errors."""

import json

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


def test_train_met_from_out_of_fold_sources_saves_every_fold_source(tmp_path, capsys):
    output = tmp_path / "run"
    experiment = tmp_path / "experiment.json"
    experiment.write_text(json.dumps({"source_folds": 2, "epochs": 1, "hidden_dims": [16]}))
    assert main(["train", *FAST, "--config", str(experiment), "--output", str(output)]) == 0
    assert "source_fold{0..1}_encoder.keras" in capsys.readouterr().out
    for name in ("model.keras", "encoder.keras", "source_fold0_encoder.keras",
                 "source_fold1_encoder.keras", "figures.json"):
        assert (output / name).is_file(), name
    figures = json.loads((output / "figures.json").read_text())
    assert [result["method"] for result in figures["results"]] == ["met"]
    assert len(figures["results"][0]["source_folds"]) == 2


def test_train_met_names_the_source_and_method_it_chose_and_saves_those(tmp_path, capsys):
    output = tmp_path / "run"
    experiment = tmp_path / "experiment.json"
    experiment.write_text(json.dumps({"source_candidates": ["mrl"], "hidden_dims": [16],
                                      "method_candidates": {"met": ["kim"]}}))
    assert main(["train", *FAST, "--config", str(experiment), "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    figures = json.loads((output / "figures.json").read_text())
    choice = figures["results"][-1]["source_choice"]
    assert set(choice["best_val_avg_map"]) == {"source_pcl", "mrl"}
    assert choice["chosen"] == max(choice["best_val_avg_map"],
                                   key=choice["best_val_avg_map"].get)
    line = ", ".join(f"{label} {choice['best_val_avg_map'][label]:.4f}"
                     for label in ("source_pcl", "mrl"))  # the config's order
    assert f"source chosen on validation avg mAP: {choice['chosen']} ({line})" in printed
    # The source row is the chosen source, measured on the test split.
    source_row = figures["results"][0]
    assert source_row["method"] == "source (stage 1)"
    assert source_row["best_val_avg_map"] == choice["best_val_avg_map"][choice["chosen"]]
    assert (output / "source_encoder.keras").is_file()
    method = figures["results"][-1]["method_choice"]
    assert figures["results"][-1]["best_val_avg_map"] == max(method["best_val_avg_map"].values())
    line = ", ".join(f"{name} {method['best_val_avg_map'][name]:.4f}" for name in ("met", "kim"))
    assert f"method chosen on validation avg mAP: {method['chosen']} ({line})" in printed
    assert "method_choice" not in source_row


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


def test_compare_from_an_experiment_file_then_plot(tmp_path, capsys):
    experiment = tmp_path / "experiment.json"
    experiment.write_text(json.dumps({
        "data": "digits", "methods": ["source_pcl", "met", "control"], "seeds": 3,
        "epochs": 3, "patience": 1, "embedding_dim": 8, "hidden_dims": [8],
        "source_method": "source_pcl",
        "soft_contrastive": {"sigma": "median", "delta": 1.5, "label_mix": 0.25},
        "method_options": {"control": {"delta": 2.0, "label_mix": 0.75}}}))
    out = tmp_path / "compare.json"
    # --seeds on the command line overrides the file's 3.
    assert main(["compare", "--config", str(experiment), "--seeds", "2", "--quiet",
                 "--json", str(out)]) == 0
    content = json.loads(out.read_text())
    assert content["seeds"] == 2 and content["methods"] == ["source_pcl", "met", "control"]
    assert content["config"]["hidden_dims"] == [8] and content["config"]["epochs"] == 3
    runs = content["runs"]
    assert [run["method"] for run in runs] == ["source_pcl", "met", "control"] * 2
    for run in runs:
        curves = run["test_curves"]
        assert curves["recall"] == [i / 10 for i in range(11)]
        for direction in ("i2t", "t2i"):
            assert len(curves[direction]) == 11
            assert np.all(np.diff(curves[direction]) <= 1e-12)
    # MET reused the listed prototype source instead of training its own.
    assert all("source" not in run["history"] for run in runs)
    capsys.readouterr()

    figures = tmp_path / "figures"
    assert main(["plot", str(out), "--out", str(figures)]) == 0
    for name in ("precision_recall.png", "validation_map.png"):
        assert (figures / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    # Drawn again, of one method only: the files are replaced.
    first = (figures / "precision_recall.png").read_bytes()
    assert main(["plot", str(out), "--methods", "met", "--out", str(figures),
                 "--overwrite"]) == 0
    assert (figures / "precision_recall.png").read_bytes() != first
    assert main(["plot", str(out), "--methods", "met,dscmr", "--out", str(figures),
                 "--overwrite"]) == 2
    assert "no runs of ['dscmr']" in capsys.readouterr().err
    assert main(["plot", str(experiment), "--out", str(tmp_path / "other")]) == 2
    assert "not a `keras-cmr compare --json` file" in capsys.readouterr().err
    del content["runs"][0]["history"]
    out.write_text(json.dumps(content))
    assert main(["plot", str(out), "--out", str(tmp_path / "other")]) == 2
    assert "a run has no 'history' entry" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"learning_rat": 0.1}', "unknown field(s) ['learning_rat']"),
    ('{"source_method": "clip"}', "source_method"),
    ('{"soft_contrastive": {"sigma": -1}}', "sigma"),
])
def test_bad_experiment_files_get_one_clear_line(tmp_path, capsys, content, message):
    experiment = tmp_path / "experiment.json"
    experiment.write_text(content)
    assert main(["compare", "--config", str(experiment)]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


@pytest.mark.parametrize("argv, message", [
    (["compare", "--methods", "nonsense"], "unknown method"),
    (["compare", "--seeds", "0"], "--seeds"),
    (["train", "--data", "imagenet"], "digits"),
    (["train", "--data", "npz:/nowhere/data.npz"], "/nowhere/data.npz"),
    (["train", "--epochs", "0"], "epochs"),
    (["evaluate", "/nowhere/model.keras"], "no model file"),
    (["compare", "--config", "/nowhere/experiment.json"], "no such file"),
    (["plot", "/nowhere/compare.json"], "results file: no such file"),
])
def test_bad_input_gets_one_clear_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # train's default output folder is relative: an empty one
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


def test_validation_curves_name_out_of_fold_sources_as_stage_one():
    from keras_cmr.cli.plot import validation_curves
    from keras_cmr.results import RunResult

    def history(value):
        return {"val_avg_map": [value, 2 * value]}

    def run(method, stages, source_folds=None):
        return RunResult(method, 0, {"avg_map": 0.5}, best_val_avg_map=0.5, epochs=2,
                         seconds=1.0, history=stages, source_folds=source_folds)

    shared = [run("source_pcl", {"source_pcl": history(0.1)}),
              run("met", {"met": history(0.2)}),
              # The cosine-CE baseline's stage is also named "source": not MET's source.
              run("source", {"source": history(0.05)})]
    assert validation_curves(shared, "source_pcl") == {
        "source: source_pcl (stage 1)": [[0.1, 0.2]], "met (stage 2)": [[0.2, 0.4]]}
    own = [run("kim", {"source": history(0.1), "kim": history(0.2)})]
    assert validation_curves(own, "source_pcl")["source: source_pcl (stage 1)"] == [[0.1, 0.2]]
    folds = [history(0.3), history(0.4)]
    runs = [shared[0]] + [run(method, {method: history(0.2)}, source_folds=folds)
                          for method in ("met", "kim")]
    curves = validation_curves(runs, "source_pcl")
    # The fold sources are shared by met and kim: drawn once per seed.
    assert curves["source: source_pcl, out-of-fold (stage 1)"] == [[0.3, 0.6], [0.4, 0.8]]
    assert curves["source: source_pcl, all training pairs (baseline)"] == [[0.1, 0.2]]
    assert curves["kim (stage 2)"] == [[0.2, 0.4]]
