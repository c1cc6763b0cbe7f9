"""A method that competes with others on the run's validation split (`method_candidates`);
a whole run with the choice: tests/experiment/test_source_choice.py."""

import pytest

from keras_cmr.config import TrainingConfig
from keras_cmr.experiment import method_choice
from keras_cmr.results import RunResult, result_from_dict


def stage(best):
    return {"epochs": 1, "best_val_avg_map": best, "val_avg_map": [best], "loss": [1.0]}


def test_candidates_are_read_per_method_and_listed_after_it():
    config = TrainingConfig(method_candidates={"met": ["kim", "met_selective"]})
    assert config.method_candidates == {"met": ("kim", "met_selective")}
    assert config.candidates_of("met") == ("met", "kim", "met_selective")
    assert config.candidates_of("kim") == ("kim",)
    assert TrainingConfig().candidates_of("met") == ("met",)


@pytest.mark.parametrize("candidates, match", [
    (["kim"], "must be a dict of method name -> list of methods"),
    ({"met": "kim"}, r"of 'met' must be a non-empty list of methods, e\.g\. \['kim'\]"),
    ({"met": []}, "of 'met' must be a non-empty list of methods"),
    ({"met": ["met"]}, "'met' is listed twice"),
    ({"met": ["kim", "kim"]}, "'kim' is listed twice"),
    ({"met": ["control"]}, "'control' must need a source exactly when 'met' does"),
    ({"met": ["nope"]}, r"`method_candidates`: unknown method 'nope'; choose from"),
    ({"nope": ["kim"]}, r"`method_candidates`: unknown method 'nope'; choose from"),
])
def test_bad_candidates_are_refused_naming_the_problem(candidates, match):
    with pytest.raises(ValueError, match=match):
        TrainingConfig(method_candidates=candidates)


def test_the_best_validation_figure_wins_and_the_first_listed_on_a_tie():
    assert method_choice({"met": stage(0.2), "kim": stage(0.3), "other": stage(0.3)}) == {
        "chosen": "kim", "best_val_avg_map": {"met": 0.2, "kim": 0.3, "other": 0.3}}
    assert method_choice({"met": stage(0.3), "kim": stage(0.3)})["chosen"] == "met"


def test_the_choice_is_kept_in_the_results_file_layout():
    result = RunResult("met", 0, {"avg_map": 0.5}, 0.4, 2, 1.0, {"met": stage(0.4)},
                       method_choice={"chosen": "kim", "best_val_avg_map": {"met": 0.3,
                                                                             "kim": 0.4}})
    assert result_from_dict(result.to_dict()) == result
    assert "method_choice" not in RunResult("met", 0, {}, 0.4, 2, 1.0, {}).to_dict()
