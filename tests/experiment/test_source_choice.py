"""A transfer's source chosen among several settings on the run's validation split."""

import dataclasses

import pytest

from keras_cmr.config import TrainingConfig
from keras_cmr.datasets import load_digits_two_view
from keras_cmr.experiment import ChosenSource, TrainedSource, compare
from keras_cmr.options import SourceSetting

NOISY = TrainingConfig(epochs=2, patience=1, embedding_dim=8, hidden_dims=(8,), verbose=0,
                       label_noise={"rate": 0.4}, source_method="source_pcl", source_folds=2,
                       source_candidates=["mrl"])


def stage(best):
    return {"epochs": 1, "best_val_avg_map": best, "val_avg_map": [best], "loss": [1.0]}


def test_settings_are_read_from_names_and_dicts_and_labelled():
    config = TrainingConfig(source_candidates=["mrl", {"method": "source_pcl", "folds": 5}])
    assert config.source_settings() == (SourceSetting("source_pcl"), SourceSetting("mrl"),
                                        SourceSetting("source_pcl", 5))
    assert [setting.label() for setting in config.source_settings()] == [
        "source_pcl", "mrl", "source_pcl x5"]
    alone = config.with_source(SourceSetting("mrl"))
    assert (alone.source_method, alone.source_folds, alone.source_candidates) == ("mrl", 1, ())
    assert TrainingConfig().source_settings() == (SourceSetting("source_pcl"),)


@pytest.mark.parametrize("candidates, match", [
    ("mrl", r"must be a list of sources, e.g. \['mrl'\], got a single one"),
    (["met"], "'met' cannot serve as a source; the sources are"),
    (["source_pcl"], "'source_pcl' is listed twice"),
    (["mrl", {"method": "mrl"}], "'mrl' is listed twice"),
    ([{"method": "mrl", "fold": 2}], r"unknown option\(s\) \['fold'\]"),
    ([{"method": "mrl", "folds": 0}], r"folds must be 1 \(one source\) or an integer >= 2"),
    ([{"method": "mrl", "folds": True}], "received folds=True"),
])
def test_bad_candidates_are_refused_naming_the_problem(candidates, match):
    with pytest.raises(ValueError, match=match):
        TrainingConfig(source_candidates=candidates)


def test_the_candidate_with_the_best_validation_figure_is_chosen_first_on_a_tie():
    low, high = TrainedSource("low", stage(0.2)), TrainedSource("high", stage(0.3))
    chosen = ChosenSource.best_of({"a": low, "b": high, "c": TrainedSource("c", stage(0.3))})
    assert (chosen.label, chosen.model, chosen.history) == ("b", "high", stage(0.3))
    assert chosen.validation_avg_map() == 0.3
    assert chosen.result_entries() == {
        "source_choice": {"chosen": "b", "best_val_avg_map": {"a": 0.2, "b": 0.3, "c": 0.3}}}
    with pytest.raises(ValueError, match=r"sources \['given'\] have no validation figure"):
        ChosenSource.best_of({"a": low, "given": TrainedSource("given")})


def by_method(results):
    return {result.method: result for result in results}


def test_met_with_candidates_learns_from_the_source_it_chose_as_if_given_only_that_one():
    data = load_digits_two_view()
    [chosen] = compare(["met"], data, NOISY, seeds=1, log=None)
    choice = chosen.source_choice
    assert set(choice["best_val_avg_map"]) == {"source_pcl x2", "mrl"}
    # Each candidate's figure is the one it reaches alone: MRL's as a method, the
    # out-of-fold source's as the mean over its folds.
    alone = by_method(compare(["mrl", "met"], data, NOISY.with_source(SourceSetting("mrl")),
                              seeds=1, log=None))
    assert choice["best_val_avg_map"]["mrl"] == alone["mrl"].best_val_avg_map
    folds = compare(["met"], data, NOISY.with_source(SourceSetting("source_pcl", 2)), seeds=1,
                    log=None)[0]
    fold_mean = sum(fold["best_val_avg_map"] for fold in folds.source_folds) / 2
    assert choice["best_val_avg_map"]["source_pcl x2"] == pytest.approx(fold_mean, abs=1e-12)
    expected = max(choice["best_val_avg_map"], key=choice["best_val_avg_map"].get)
    assert choice["chosen"] == expected
    # MET's figures are those of MET given the chosen source only.
    reference = alone["met"] if expected == "mrl" else folds
    assert chosen.test == reference.test
    assert chosen.history["met"] == reference.history["met"]


def test_a_listed_source_method_is_not_taken_as_the_source_when_there_are_candidates():
    data = load_digits_two_view()
    config = dataclasses.replace(NOISY, source_folds=1)
    together = by_method(compare(["source_pcl", "met"], data, config, seeds=1, log=None))
    [alone] = compare(["met"], data, config, seeds=1, log=None)
    assert together["met"].source_choice == alone.source_choice
    assert together["met"].test == alone.test
