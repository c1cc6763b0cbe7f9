"""Paired per-seed differences against scipy.stats and a numpy bootstrap reference."""

import numpy as np
import pytest
import scipy.stats

from keras_cmr.results import RunFailure, RunResult
from keras_cmr.statistics import (compare_to_rivals, paired_comparisons, paired_difference,
                                  verdict_table)


def test_t_interval_matches_the_t_quantile_formula_and_ttest_rel(rng):
    a = rng.normal(0.30, 0.02, size=10)
    b = a - rng.normal(0.01, 0.01, size=10)
    result = paired_difference(a, b, confidence=0.9)
    d = a - b
    half = scipy.stats.t.ppf(0.95, 9) * d.std(ddof=1) / np.sqrt(10)
    np.testing.assert_allclose(result["interval"], [d.mean() - half, d.mean() + half])
    assert result["mean"] == pytest.approx(d.mean()) and result["n"] == 10
    # The interval excludes 0 exactly when the two-sided paired t-test rejects at 10%.
    rejects = scipy.stats.ttest_rel(a, b).pvalue < 0.1
    assert (result["verdict"] != "tie") == rejects


def test_bootstrap_matches_scipy_and_a_numpy_percentile_reference(rng):
    d = rng.normal(0.02, 0.05, size=40)
    b = rng.uniform(size=40)
    result = paired_difference(b + d, b, method="bootstrap", seed=7)
    direct = scipy.stats.bootstrap((d,), np.mean, n_resamples=9999, method="BCa",
                                   rng=np.random.default_rng(7)).confidence_interval
    np.testing.assert_allclose(result["interval"], [direct.low, direct.high], rtol=1e-10)
    resampled = d[np.random.default_rng(1).integers(0, 40, size=(20000, 40))].mean(axis=1)
    np.testing.assert_allclose(result["interval"], np.percentile(resampled, [2.5, 97.5]),
                               atol=0.004)
    assert result["interval"] == paired_difference(b + d, b, method="bootstrap",
                                                   seed=7)["interval"]


@pytest.mark.parametrize("shift, expected", [(0.05, "better"), (-0.05, "worse"), (0.0, "tie")])
def test_verdict_follows_the_interval(rng, shift, expected):
    b = rng.uniform(size=10)
    noise = np.tile([0.001, -0.001], 5)
    assert paired_difference(b + shift + noise, b)["verdict"] == expected


def test_constant_differences_give_a_point_interval():
    result = paired_difference([0.5, 0.6, 0.7], [0.4, 0.5, 0.6], method="bootstrap")
    np.testing.assert_allclose(result["interval"], [0.1, 0.1])
    assert result["verdict"] == "better"


def test_rivals_and_verdict_table(rng):
    met = rng.uniform(0.5, 0.6, size=5)
    scores = {"met": met, "cca": met - 0.2 + rng.normal(0, 0.01, 5), "twin": met.copy()}
    rivals = compare_to_rivals(scores, "met")
    assert set(rivals) == {"cca", "twin"} and rivals["cca"]["verdict"] == "better"
    table = verdict_table({("wiki", 0.0): rivals, ("wiki", 0.2): rivals})
    assert table == {"cca": {"better": 2, "tie": 0, "worse": 0},
                     "twin": {"better": 0, "tie": 2, "worse": 0}}


@pytest.mark.parametrize(
    "a, b, kwargs, match",
    [
        ([1.0, 2.0], [1.0], {}, r"equal length .* shapes \(2,\) and \(1,\)"),
        ([1.0], [1.0], {}, r"at least 2 seeds, got 1"),
        ([1.0, np.nan], [1.0, 2.0], {}, "finite"),
        ([1.0, 2.0], [1.0, 3.0], {"confidence": 95}, r"confidence must be a number in \(0, 1\)"),
        ([1.0, 2.0], [1.0, 3.0], {"method": "wilcoxon"}, "method must be one of"),
    ],
)
def test_bad_input_is_refused(a, b, kwargs, match):
    with pytest.raises(ValueError, match=match):
        paired_difference(a, b, **kwargs)
    with pytest.raises(ValueError, match="reference method 'met' has no scores"):
        compare_to_rivals({"cca": [1.0, 2.0]}, "met")


def run(method, seed, test):
    return RunResult(method, seed, test, best_val_avg_map=0.5, epochs=1, seconds=1.0,
                     history={})


def compare_results(scores_by_method):
    return [run(method, seed, {"avg_map": score, "i2t_map": 0.0})
            for method, scores in scores_by_method.items() for seed, score in scores.items()]


def test_paired_comparisons_pair_compare_results_by_seed_number(rng):
    met = {seed: 0.5 + 0.01 * rng.normal() for seed in range(6)}
    rival = {seed: met[seed] - 0.02 - 0.005 * rng.normal() for seed in range(6)}
    # Results in shuffled order, one seed of the rival missing (its run failed): pairing is
    # by seed number.
    del rival[3]
    results = compare_results({"met": met, "rival": rival, "lonely": {0: 0.4}})
    results.append(RunFailure("rival", 3, "diverged"))
    order = rng.permutation(len(results))
    comparisons = paired_comparisons([results[i] for i in order])
    assert list(comparisons) == ["rival"]  # "lonely" shares one seed only: no interval
    seeds = [0, 1, 2, 4, 5]
    a, b = [met[s] for s in seeds], [rival[s] for s in seeds]
    expected = scipy.stats.ttest_rel(a, b).confidence_interval(confidence_level=0.95)
    result = comparisons["rival"]
    np.testing.assert_allclose(result["interval"], [expected.low, expected.high])
    assert result["mean"] == pytest.approx(np.mean(np.subtract(a, b))) and result["n"] == 5
    assert result["verdict"] == "better"


@pytest.mark.parametrize("results, match", [
    ([run("a", 0, {"avg_map": 0.1})], "reference method 'met'"),
    ([run("met", 0, {"avg_map": 0.1})] * 2, "two runs of seed 0"),
    ([run("met", 0, {"i2t_map": 0.1})], "no test figure 'avg_map'"),
])
def test_paired_comparisons_refuse_bad_results(results, match):
    with pytest.raises(ValueError, match=match):
        paired_comparisons(results)
