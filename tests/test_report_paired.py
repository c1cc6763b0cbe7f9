"""experiments/report.py's paired and verdict tables over compare and noise-study files."""

import importlib.util
import json
import os
import re

import numpy as np
import pytest
import scipy.stats

REPORT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "experiments", "report.py")


def load_report():
    spec = importlib.util.spec_from_file_location("experiments_report", REPORT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(method, seed, avg, noise=None):
    """A run as the files hold it: a `RunResult`'s JSON layout, without test curves."""
    entry = {"method": method, "seed": seed,
             "test": {"avg_map": avg, "i2t_map": avg, "t2i_map": avg},
             "best_val_avg_map": avg, "epochs": 1, "seconds": 1.0,
             "history": {method: {"epochs": 1, "best_val_avg_map": avg, "val_avg_map": [avg],
                                  "loss": [1.0]}}}
    if noise is not None:
        entry["label_noise"] = noise
    return entry


def table_rows(lines, header):
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("| "):
            break
        rows.append([cell.strip() for cell in line.split("|")[1:-1]])
    return rows


def test_report_pairs_runs_by_setting_over_compare_and_noise_study_files(tmp_path, capsys, rng):
    met = rng.normal(0.5, 0.01, size=4)
    clean = [run("met", s, met[s]) for s in range(4)]
    clean += [run("control", s, met[s] - 0.05 - 0.002 * s) for s in range(4)]
    (tmp_path / "compare.json").write_text(json.dumps({"data": "toy", "runs": clean}))
    # The noise study: one file, two rates, runs tagged with their label noise.
    noisy = []
    for rate, gap in ((0.0, 0.03), (0.4, -0.04)):
        noise = {"rate": rate, "kind": "symmetric"}
        noisy += [run("met", s, met[s], noise) for s in range(3)]
        noisy += [run("control", s, met[s] - gap + 0.003 * s, noise) for s in range(3)]
        noisy += [run("kim", s, met[s] + 0.001 * (-1) ** s, noise) for s in range(3)]
    (tmp_path / "noise.json").write_text(json.dumps({"data": "toy2", "methods": ["met"],
                                                     "runs": noisy}))
    assert load_report().main([str(tmp_path / "compare.json"), str(tmp_path / "noise.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    paired = table_rows(lines, "| data | noise | rival |")
    assert [row[:3] for row in paired] == [
        ["toy", "0 none", "control"], ["toy2", "0 none", "control"], ["toy2", "0 none", "kim"],
        ["toy2", "0.4 symmetric", "control"], ["toy2", "0.4 symmetric", "kim"]]
    # The first row's interval is scipy's paired t interval of met − control.
    control = met - 0.05 - 0.002 * np.arange(4)
    expected = scipy.stats.ttest_rel(met, control).confidence_interval(confidence_level=0.95)
    assert paired[0][3] == "4"
    assert paired[0][4] == f"{np.mean(met - control):+.4f}"
    assert paired[0][5] == f"[{expected.low:+.4f}, {expected.high:+.4f}]"
    assert [row[6] for row in paired] == ["better", "better", "tie", "worse", "tie"]
    verdicts = {row[0]: row[1:] for row in table_rows(lines, "| rival | better |")}
    assert verdicts == {"control": ["2", "0", "1"], "kim": ["0", "2", "0"]}


def test_report_without_the_reference_prints_no_paired_table(tmp_path, capsys):
    (tmp_path / "runs.json").write_text(json.dumps(
        {"data": "toy", "runs": [run("kim", s, 0.1 * s) for s in range(3)]}))
    assert load_report().main([str(tmp_path / "runs.json")]) == 0
    assert "paired" not in capsys.readouterr().out
    with pytest.raises(ValueError, match="results file: no such file"):
        load_report().main([str(tmp_path / "missing.json")])


def test_report_names_the_file_of_a_run_it_cannot_read(tmp_path):
    entry = run("met", 0, 0.5)
    del entry["history"]
    path = tmp_path / "runs.json"
    path.write_text(json.dumps({"data": "toy", "runs": [entry]}))
    with pytest.raises(ValueError, match=re.escape(f"{path}: a run has no 'history' entry")):
        load_report().main([str(path)])
