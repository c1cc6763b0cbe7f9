"""`keras-cmr compare --json`'s paired statistics: each transfer method against every rival."""

import numpy as np
import pytest
from scipy import stats

from keras_cmr.cli.compare import paired_statistics
from keras_cmr.results import RunFailure, RunResult


def run(method, seed, avg_map):
    return RunResult(method, seed, {"avg_map": avg_map}, best_val_avg_map=avg_map, epochs=1,
                     seconds=1.0, history={})


def test_paired_statistics_compare_each_transfer_method_with_every_rival_by_seed():
    met = [0.30, 0.32, 0.31, 0.35]
    control = [0.29, 0.30, 0.32, 0.33]
    results = [run("met", s, v) for s, v in enumerate(met)]
    # The rival's runs arrive in another order, and one run failed: pairing is by seed.
    results += [run("control", s, control[s]) for s in (3, 1, 0, 2)]
    results.append(RunFailure("control", 4, "diverged"))
    paired = paired_statistics(results, ["met", "control"])
    assert list(paired) == ["met"]  # "control" needs no source: not a reference
    difference = np.subtract(met, control)
    interval = stats.ttest_rel(met, control).confidence_interval(0.95)
    assert paired["met"]["control"]["mean"] == pytest.approx(difference.mean())
    assert paired["met"]["control"]["interval"] == pytest.approx(
        [interval.low, interval.high])
    assert paired["met"]["control"]["n"] == 4


def test_paired_statistics_are_empty_without_a_transfer_method_that_ran():
    results = [run("contrastive", s, 0.2 + s / 100) for s in range(3)]
    assert paired_statistics(results, ["contrastive", "met"]) == {}
