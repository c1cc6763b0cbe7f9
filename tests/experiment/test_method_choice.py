"""A method that competes with others on the run's validation split (`method_candidates`);
a whole run with the choice: tests/experiment/test_source_choice.py."""

from types import SimpleNamespace

import numpy as np
import pytest

from keras_cmr.config import TrainingConfig
from keras_cmr.datasets import load_digits_two_view
from keras_cmr.experiment import Run, method_choice
from keras_cmr.failures import TrainingFailure
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
    assert result.choices() == {"method": result.method_choice}
    assert "method_choice" not in RunResult("met", 0, {}, 0.4, 2, 1.0, {}).to_dict()


class FixedEncoder:
    """Embeds both views by fixed random projections to 8 dimensions."""

    def __init__(self, image_dim, text_dim):
        rng = np.random.default_rng(0)
        self.image, self.text = rng.normal(size=(image_dim, 8)), rng.normal(size=(text_dim, 8))

    def encode_image(self, x):
        return np.asarray(x) @ self.image

    def encode_text(self, x):
        return np.asarray(x) @ self.text


def run_with_stages(figures, failing):
    """A `Run` of noisy digits whose stages are stand-ins: method -> best validation figure in
    `figures`, and a `TrainingFailure` for the methods in `failing`."""
    data = load_digits_two_view()
    config = TrainingConfig(label_noise={"rate": 0.4}, verbose=0,
                            method_candidates={"met": ["kim", "met_selective"]})
    run = Run(data, config, seed=0)
    model = SimpleNamespace(encoder=FixedEncoder(data.train.image.shape[1],
                                                 data.train.text.shape[1]))

    def train(method, source=None, config=None):
        if method in failing:
            raise TrainingFailure(f"{method} collapsed")
        return model, stage(figures.get(method, 0.1))

    run.train = train
    return run


def test_a_candidate_that_fails_is_left_out_of_the_choice_and_named():
    run = run_with_stages({"met": 0.2, "kim": 0.3, "met_selective": 0.5}, {"met_selective"})
    _, result, _ = run.method("met")
    assert result.method_choice == {"chosen": "kim",
                                    "best_val_avg_map": {"met": 0.2, "kim": 0.3},
                                    "failed": {"met_selective": "met_selective collapsed"}}
    assert result.best_val_avg_map == 0.3
    run = run_with_stages({"met": 0.2, "kim": 0.3}, {"met"})
    assert run.method("met")[1].method_choice["chosen"] == "kim"


def test_the_methods_own_failure_is_raised_when_every_candidate_fails():
    run = run_with_stages({}, {"met", "kim", "met_selective"})
    with pytest.raises(TrainingFailure, match="^met collapsed$"):
        run.method("met")
