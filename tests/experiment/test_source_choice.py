"""A transfer's source chosen among several settings on the run's validation split, and the
method chosen among candidates after it."""

import dataclasses

import pytest

from keras_cmr.config import TrainingConfig
from keras_cmr.datasets import load_digits_two_view
from keras_cmr.experiment import ChosenSource, OutOfFoldSource, TrainedSource, compare
from keras_cmr.options import SourceSetting

NOISY = TrainingConfig(epochs=2, patience=1, embedding_dim=8, hidden_dims=(8,), verbose=0,
                       label_noise={"rate": 0.4}, source_method="source_pcl",
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


def test_out_of_fold_sources_are_judged_by_the_mean_of_their_folds():
    folds = [stage(0.25), stage(0.5)]
    source = OutOfFoldSource(None, None, None, [], folds, 0.0, "")
    assert source.validation_avg_map() == 0.375
    assert source.result_entries() == {"source_folds": folds}


def by_method(results):
    return {result.method: result for result in results}


def test_met_learns_from_the_source_and_is_the_method_it_chose_as_if_run_alone():
    data = load_digits_two_view()
    # source_pcl listed first is not taken as MET's source: MET still chooses.
    config = dataclasses.replace(NOISY, method_candidates={"met": ["kim"]})
    lines = []
    chosen = by_method(compare(["source_pcl", "met"], data, config, seeds=1, log=lines.append,
                               progress=False))
    choice = chosen["met"].source_choice
    figures = choice["best_val_avg_map"]
    assert set(figures) == {"source_pcl", "mrl"}
    assert choice["chosen"] == max(figures, key=figures.get)
    # Each candidate's figure is the one it reaches alone, and MET's figures are those of the
    # method it chose, given the chosen source only (listed before it, so shared).
    alone = by_method(compare(["source_pcl", "mrl", "met", "kim"], data,
                              NOISY.with_source(SourceSetting(choice["chosen"])), seeds=1,
                              log=None))
    assert figures == {name: alone[name].best_val_avg_map for name in ("source_pcl", "mrl")}
    assert chosen["source_pcl"].history == alone["source_pcl"].history
    method = chosen["met"].method_choice
    assert method["best_val_avg_map"] == {name: alone[name].best_val_avg_map
                                          for name in ("met", "kim")}
    figures = method["best_val_avg_map"]
    assert method["chosen"] == max(figures, key=figures.get)
    winner = alone[method["chosen"]]
    assert chosen["met"].test == winner.test
    assert chosen["met"].history["met"] == winner.history[method["chosen"]]
    assert alone["met"].method_choice is None and chosen["source_pcl"].method_choice is None
    assert lines[1].endswith(f"s; source {choice['chosen']} chosen; method {method['chosen']} "
                             "chosen)")
    assert lines[0].endswith(" s)")  # source_pcl chose nothing
