"""The scripts behind docs/results.md: report tables, ablation variants, search resumption,
relaxed-label statistics."""

import dataclasses
import importlib.util
import json
import os

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_script(name):
    path = os.path.join(REPO_ROOT, "experiments", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"experiments_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_entries(method, seed, val, test, **extra):
    """A run as a study's file holds it: a `RunResult`'s JSON layout and the study's entries."""
    return {"method": method, "seed": seed, "test": {"avg_map": test},
            "best_val_avg_map": val, "epochs": 1, "seconds": 1.0,
            "history": {method: {"epochs": 1, "best_val_avg_map": val, "val_avg_map": [val],
                                 "loss": [1.0]}}, **extra}


def row(avg, std):
    return {"seeds": 3, "i2t_map": avg + 0.01, "i2t_map_std": std, "t2i_map": avg - 0.01,
            "t2i_map_std": std, "avg_map": avg, "avg_map_std": std, "best_val_avg_map": avg}


def test_report_checks_each_target_against_one_standard_deviation(tmp_path, capsys):
    results = tmp_path / "compare.json"
    results.write_text(json.dumps({
        "data": "toy", "seeds": 3, "methods": ["source_pcl", "contrastive", "naive_sum",
                                                "met", "control"],
        "config": {"source_method": "source_pcl"},
        "table": {"contrastive": row(0.25, 0.004), "control": row(0.262, 0.005),
                  "met": row(0.26, 0.003), "naive_sum": row(0.24, 0.002),
                  "source_pcl": row(0.258, 0.001)}}))
    assert load_script("report").main([str(results)]) == 0
    lines = capsys.readouterr().out.splitlines()
    methods = [line.split("|")[1].strip() for line in lines if line.startswith("| `")]
    assert methods == ["`source_pcl`", "`contrastive`", "`naive_sum`", "`met`", "`control`"]
    header = next(i for i, line in enumerate(lines) if line.startswith("| MET against"))
    targets = lines[header + 2:]
    verdicts = {cells[1].strip(): cells[5].strip()
                for cells in (line.split("|") for line in targets if line.startswith("| "))}
    assert verdicts["class-wise source"] == "no"       # +0.002 < 0.003
    assert verdicts["naive sum"] == "yes"              # +0.020 > 0.003
    assert verdicts["no-source control"] == "no"       # -0.002
    assert verdicts["best pair-wise-only"] == "yes"    # contrastive, +0.010 > 0.004


def test_ablation_variants_change_one_thing_each():
    variants = load_script("ablation").variants(
        {"sigma": 1.0, "delta": 1.5, "label_mix": 0.75}, {"delta": 2.0, "label_mix": 0.75})
    names = [name for name, *_ in variants]
    assert names[0].startswith("MET") and len(names) == len(set(names))
    options = {name: (method, opts) for name, method, opts, _ in variants}
    folds = {name: count for name, _, _, count in variants}
    assert folds["out-of-fold source (5 folds)"] == 5 and folds[names[0]] == 1
    assert options["rank-calibrated relaxed labels (sigma 0.25)"][1] == {
        "sigma": 0.25, "delta": 1.5, "label_mix": 0.75, "calibration": "rank"}
    assert options["relaxed labels only (fixed margin)"][1]["margin"] == "fixed"
    assert options["relaxed margins only (hard labels)"][1]["label_weights"] == "hard"
    assert "sigma = 1.0" not in options and options["sigma = median"][1]["sigma"] == "median"
    control_same = options["no-source control, MET's options (w = lam * y)"]
    assert control_same == ("control", {"delta": 1.5, "label_mix": 0.75})
    assert options["no-source control, its own tuned options"][1]["delta"] == 2.0


def test_search_reuses_the_trials_of_its_results_file(tmp_path):
    search_module = load_script("search")
    results = tmp_path / "search.json"
    done = {"stage": "loss", "method": "met", "sigma": 0.5, "val_avg_map": 0.27,
            "val_avg_map_seeds": [0.26, 0.28], "epochs": [9, 11], "seconds": 1.0}
    results.write_text(json.dumps({"seeds": 2, "chosen": None, "trials": [done]}))
    # No data set: a trial that is not in the file would fail to train.
    search = search_module.Search(None, 2, str(results))
    assert search.trial("loss", "met", None, sigma=0.5) == 0.27
    # Saving keeps the file's trials that this run has not revisited.
    other = {**done, "sigma": 2.0}
    results.write_text(json.dumps({"seeds": 2, "chosen": None, "trials": [done, other]}))
    search = search_module.Search(None, 2, str(results))
    search.trial("loss", "met", None, sigma=0.5)
    assert json.loads(results.read_text())["trials"] == [done, other]
    with pytest.raises(AttributeError):
        search.trial("loss", "met", None, sigma=0.25)
    # Other seeds: nothing is reused.
    assert search_module.Search(None, 3, str(results)).done == {}


def test_relaxed_label_statistics_against_brute_force(rng):
    script = load_script("relaxed_labels")
    scores = rng.integers(0, 5, size=40).astype(float)  # many ties
    positive = rng.random(40) < 0.3
    pairs = [(p, q) for p in scores[positive] for q in scores[~positive]]
    expected = np.mean([1.0 if p > q else 0.5 if p == q else 0.0 for p, q in pairs])
    assert script.roc_auc(scores, positive) == pytest.approx(expected)

    labels = np.array([0, 0, 1, 1])
    w = np.array([[1.0, 0.9, 0.2, 0.1],
                  [0.8, 1.0, 0.3, 0.95],   # row 1's best partner (j != 1) is class 1
                  [0.1, 0.2, 1.0, 0.7],
                  [0.0, 0.1, 0.6, 1.0]])
    stats = script.label_statistics([(w, labels)])
    assert stats["mean_w_same_class"] == pytest.approx(np.mean([0.9, 0.8, 0.7, 0.6]))
    other = [0.2, 0.1, 0.3, 0.95, 0.1, 0.2, 0.0, 0.1]
    assert stats["mean_w_other_class"] == pytest.approx(np.mean(other))
    assert stats["std_w_other_class"] == pytest.approx(np.std(other))
    assert stats["top1_partner_same_class"] == pytest.approx(0.75)
    assert stats["auc_same_vs_other"] == pytest.approx(
        np.mean([1.0 if p > q else 0.0 for p in [0.9, 0.8, 0.7, 0.6] for q in other]))


def test_noise_study_report_pairs_seeds_and_plot_draws_mean_per_rate(tmp_path, capsys):
    from keras_cmr.results import result_from_dict

    study = load_script("noise_study")
    rng = np.random.default_rng(0)
    scores = {(method, rate): rng.uniform(0.2, 0.3, size=3)
              for method in ("met", "control") for rate in (0.0, 0.4)}
    runs = [run_entries(method, seed, 0.5, float(values[seed]),
                        label_noise={"rate": rate, "kind": "symmetric"})
            for (method, rate), values in scores.items() for seed in range(3)]
    runs.append({"method": "control", "seed": 3, "failure": "diverged",
                 "label_noise": {"rate": 0.4, "kind": "symmetric"}})
    path = tmp_path / "study.json"
    path.write_text(json.dumps({"runs": runs}))
    curves = study.noise_curves([result_from_dict(entries) for entries in runs])
    for method in ("met", "control"):
        rates, means, stds = curves[method]
        assert rates == [0.0, 0.4]
        for rate, mean, std in zip(rates, means, stds):
            assert mean == pytest.approx(scores[method, rate].mean())
            assert std == pytest.approx(scores[method, rate].std(ddof=1))
    study.main(["--json", str(path), "--report", "--plot", str(tmp_path / "noise.png")])
    out = capsys.readouterr().out
    difference = scores["met", 0.4] - scores["control", 0.4]
    assert f"{difference.mean():+.4f}" in out
    assert (tmp_path / "noise.png").stat().st_size > 1000
    # Another study file's MET, paired against this file's methods by rate and seed.
    other = rng.uniform(0.2, 0.3, size=3)
    (tmp_path / "other.json").write_text(json.dumps({"runs": [
        run_entries("met", seed, 0.5, float(other[seed]),
                    label_noise={"rate": 0.4, "kind": "symmetric"}) for seed in range(3)]}))
    study.main(["--json", str(path), "--report", "--extra", f"{tmp_path / 'other.json'}=b",
                "--reference", "met+b"])
    out = capsys.readouterr().out
    assert "| method | seeds | test avg mAP | met+b − method (95% paired t) | verdict |" in out
    assert f"| `met+b` | 3 | {other.mean():.4f} ± {other.std(ddof=1):.4f} |" in out
    assert f"{(other - scores['met', 0.4]).mean():+.4f}" in out
    # Per seed, the run whose validation figure is higher: seed 0 from "b", the rest "met".
    runs = [study.result_from_dict(entries) for entries in json.loads(path.read_text())["runs"]]
    other_runs = [study.result_from_dict(entries)
                  for entries in json.loads((tmp_path / "other.json").read_text())["runs"]]
    other_runs = [dataclasses.replace(r, method="met+b",
                                      best_val_avg_map=0.6 if r.seed == 0 else 0.4)
                  for r in other_runs]
    chosen = study.chosen_on_validation(runs + other_runs, ("met", "met+b"), "picked")
    assert sorted((r.seed, r.test["avg_map"]) for r in chosen) == [
        (0, float(other[0])), (1, float(scores["met", 0.4][1])),
        (2, float(scores["met", 0.4][2]))]
    assert {r.method for r in chosen} == {"picked"}
    study.main(["--json", str(path), "--report", "--figure", "val"])
    assert "| `met` | 3 | 0.5000 ± 0.0000 |" in capsys.readouterr().out  # run_entries' val
    with pytest.raises(SystemExit):
        study.main(["--json", str(path), "--report", "--extra", "no-label"])
    assert "--extra takes PATH=LABEL, got 'no-label'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        study.main(["--json", str(path), "--report", "--choose", "met=one"])
    assert "--choose takes A,B=LABEL, got 'met=one'" in capsys.readouterr().err


def source_choice_runs():
    """Runs of a (out-of-fold sources) and b (one source) for seeds 0-2 whose sources'
    validation figures say: b on seed 0, a on seed 1, a tie on seed 2."""
    from keras_cmr.results import result_from_dict

    noise = {"rate": 0.4, "kind": "symmetric"}

    def run(method, seed, source_val, test, folds):
        entries = run_entries(method, seed, 0.9, test, label_noise=noise)
        if folds:  # out-of-fold sources: their mean is the source's figure
            entries["source_folds"] = [{"epochs": 1, "best_val_avg_map": v,
                                        "val_avg_map": [v], "loss": [1.0]}
                                       for v in (source_val - 0.125, source_val + 0.125)]
        else:
            entries["history"]["source"] = {"epochs": 1, "best_val_avg_map": source_val,
                                            "val_avg_map": [source_val], "loss": [1.0]}
        return result_from_dict(entries)

    # Figures exact in binary, so that seed 2's tie is one.
    return [run("a", 0, 0.25, 0.20, folds=True), run("b", 0, 0.375, 0.25, folds=False),
            run("a", 1, 0.5, 0.30, folds=True), run("b", 1, 0.375, 0.35, folds=False),
            run("a", 2, 0.375, 0.40, folds=True), run("b", 2, 0.375, 0.45, folds=False)]


def test_noise_study_chooses_by_the_source_validation_figure_of_each_run():
    from keras_cmr.results import result_from_dict

    study = load_script("noise_study")
    noise = {"rate": 0.4, "kind": "symmetric"}
    runs = source_choice_runs()
    chosen = study.chosen_on_validation(runs, ("a", "b"), "picked", by="source")
    # Seed 0: b's source is better; seed 1: a's; seed 2: a tie, the first listed (a).
    assert sorted((r.seed, r.test["avg_map"]) for r in chosen) == [(0, 0.25), (1, 0.30),
                                                                     (2, 0.40)]
    bare = result_from_dict(run_entries("c", 0, 0.9, 0.1, label_noise=noise))
    with pytest.raises(ValueError, match="the c run of seed 0 recorded no source"):
        study.chosen_on_validation(runs + [bare], ("a", "c"), "picked", by="source")


def test_noise_study_chooses_the_source_then_the_method_and_plots_the_named_lines(
        tmp_path, capsys, monkeypatch):
    runs = [run.to_dict() for run in source_choice_runs()]
    noise = {"rate": 0.4, "kind": "symmetric"}
    # c beats the source-chosen run (validation 0.9) on seed 0 only.
    runs += [run_entries("c", seed, 0.95 if seed == 0 else 0.5, 0.9, label_noise=noise)
             for seed in range(3)]
    path = tmp_path / "study.json"
    path.write_text(json.dumps({"runs": runs}))
    study = load_script("noise_study")
    drawn = []
    curves = study.noise_curves
    monkeypatch.setattr(study, "noise_curves",
                        lambda runs: drawn.append([r.method for r in runs]) or curves(runs))
    study.main(["--json", str(path), "--report", "--choose-source", "a,b=by_source",
                "--choose", "by_source,c=rule", "--reference", "rule",
                "--plot", str(tmp_path / "noise.png"), "--plot-methods", "rule,c"])
    out = capsys.readouterr().out
    # Seed 0: c; seeds 1 and 2: the source choice (a, a on the tie): 0.9, 0.30, 0.40.
    rule = np.array([0.9, 0.30, 0.40])
    assert f"| `rule` | 3 | {rule.mean():.4f} ± {rule.std(ddof=1):.4f} |" in out
    assert drawn == [["rule"] * 3 + ["c"] * 3]
    assert (tmp_path / "noise.png").stat().st_size > 1000


def test_source_study_ensemble_similarity_is_the_mean_of_its_sources_cosines():
    from keras_cmr.experiment import OutOfFoldSource

    study = load_script("source_study")
    rng = np.random.default_rng(0)

    def unit(rows, dim):
        x = rng.normal(size=(rows, dim)).astype("float32")
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    folds = np.array([0, 1, 0, 1, 0])
    sources = [OutOfFoldSource(unit(5, dim), unit(5, dim), folds, [f"e{dim}"], [{"d": dim}], 1.5,
                               "old") for dim in (3, 4, 6)]
    ensemble = study.concatenated(sources, "fingerprint")
    expected = np.mean([s.image @ s.text.T for s in sources], axis=0)
    np.testing.assert_allclose(ensemble.image @ ensemble.text.T, expected, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(ensemble.image, axis=1), 1.0, atol=1e-6)
    assert ensemble.image.shape == (5, 13) and ensemble.image.dtype == np.float32
    assert ensemble.split_fingerprint == "fingerprint"
    assert ensemble.encoders == ["e3", "e4", "e6"] and ensemble.seconds == pytest.approx(4.5)
    np.testing.assert_array_equal(ensemble.fold_ids, folds)


def test_source_study_trains_each_noisy_source_variant_as_a_registered_source():
    from keras_cmr import methods

    study = load_script("source_study")
    assert set(study.NOISY_SOURCES) < set(study.VARIANTS)
    assert set(study.NOISY_SOURCES.values()) <= set(methods.sources())


def test_source_study_report_pairs_each_source_with_the_default_on_both_splits(tmp_path, capsys):
    study = load_script("source_study")
    rng = np.random.default_rng(1)
    scores = {variant: rng.uniform(0.2, 0.3, size=(3, 2)) for variant in ("pcl", "clean_labels")}
    runs = [run_entries("met", seed, float(v[0]), float(v[1]),
                        label_noise={"rate": 0.4, "kind": "symmetric"}, variant=variant)
            for variant, values in scores.items() for seed, v in enumerate(values)]
    runs.append({"variant": "ensemble", "method": "met", "seed": 0, "failure": "collapsed",
                 "label_noise": {"rate": 0.4, "kind": "symmetric"}})
    path = tmp_path / "sources.json"
    path.write_text(json.dumps({"runs": runs}))
    study.main(["--json", str(path), "--report"])
    out = capsys.readouterr().out
    difference = scores["clean_labels"] - scores["pcl"]
    row = next(line for line in out.splitlines() if line.startswith("| `clean_labels`"))
    assert f"{difference[:, 0].mean():+.4f}" in row and f"{difference[:, 1].mean():+.4f}" in row
    assert f"{scores['clean_labels'][:, 0].mean():.4f}" in row
    assert "`ensemble`" not in out
    with pytest.raises(SystemExit):
        study.main(["--json", str(path), "--variants", "pcl,oracle"])


def test_input_practice_pairs_each_setting_with_the_protocol_and_picks_on_validation(
        tmp_path, capsys):
    from scipy import stats

    practice = load_script("input_practice")
    rng = np.random.default_rng(1)
    scores = {setting: rng.uniform(0.2, 0.3, size=(3, 2))
              for setting in ("protocol", "l2 both", "width 512")}
    scores["width 512"][:, 0] += 0.2  # the best on validation
    runs = [run_entries("met", seed, float(values[seed, 0]), float(values[seed, 1]),
                        setting=setting)
            for setting, values in scores.items() for seed in range(3)]
    runs.append({"method": "met", "seed": 3, "failure": "collapsed", "setting": "l2 both"})
    path = tmp_path / "practice.json"
    path.write_text(json.dumps({"runs": runs}))
    read = practice.load_runs(str(path))
    assert [practice.saved(*entry) for entry in read] == runs  # saved again as it was read
    table = practice.paired_by_setting(read)["met"]
    difference = scores["l2 both"] - scores["protocol"]
    low, high = stats.ttest_rel(scores["l2 both"][:, 1], scores["protocol"][:, 1]) \
        .confidence_interval(0.95)
    assert table["l2 both"]["seeds"] == 3
    assert table["l2 both"]["val"]["mean"] == pytest.approx(difference[:, 0].mean())
    assert table["l2 both"]["test"]["interval"] == pytest.approx([low, high])
    assert "test" not in table["protocol"]
    assert practice.validation_choice(table) == "width 512"
    practice.main(["--json", str(path), "--report"])
    out = capsys.readouterr().out
    assert f"| `met` | width 512 | {scores['width 512'][:, 0].mean():.4f} |" in out
    assert f"| l2 both | {difference[:, 0].mean():+.4f} / {difference[:, 1].mean():+.4f} |" in out


def test_input_practice_refuses_an_unknown_setting(tmp_path):
    practice = load_script("input_practice")
    with pytest.raises(SystemExit, match="unknown setting"):
        practice.main(["--config", os.path.join(REPO_ROOT, "experiments", "digits.json"),
                       "--settings", "protocol,more layers", "--json", str(tmp_path / "p.json")])


def test_trust_study_finds_the_changed_labels_and_pairs_validation_over_seeds(tmp_path,
                                                                              capsys):
    from keras_cmr.datasets import load_digits_two_view

    study = load_script("trust_study")
    clean = load_digits_two_view()
    noisy = clean.with_label_noise(0.3, seed=1).with_validation(0.1, seed=1)
    flipped = study.flipped_rows(clean, noisy.train)
    assert flipped.shape == (noisy.train.num_pairs,)
    assert abs(flipped.mean() - 0.3) < 0.05
    rng = np.random.default_rng(0)
    val = {(method, value): rng.uniform(0.1, 0.2, size=3)
           for method, value in (("met", None), ("met_selective", 0.1))}
    runs = [{"rate": 0.4, "seed": seed, "method": method, "trust_temperature": value,
             "best_val_avg_map": float(scores[seed])}
            for (method, value), scores in val.items() for seed in range(3)]
    agreement = [{"rate": 0.4, "seed": seed, "temperature": 0.1, "mean": 0.5,
                  "mean_kept": 0.8, "mean_flipped": 0.1 * seed} for seed in range(3)]
    path = tmp_path / "trust.json"
    path.write_text(json.dumps({"runs": runs, "agreement": agreement}))
    study.main(["--json", str(path), "--report"])
    out = capsys.readouterr().out
    difference = val["met_selective", 0.1] - val["met", None]
    assert f"| 0.1 | 3 | {val['met_selective', 0.1].mean():.4f} | {difference.mean():+.4f}" in out
    assert "0.500 | 0.800 | 0.100 |" in out
