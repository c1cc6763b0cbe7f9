"""The shared protocol: determinism, method construction, the summary table."""

import keras
import numpy as np
import pytest

import dataclasses
import math

from keras_cmr import experiment
from keras_cmr.datasets import load_digits_two_view, stratified_folds
from keras_cmr import methods
from keras_cmr.experiment import (TrainingConfig, build_model, format_table,
                                  out_of_fold_source, run_method, summarize)

FAST = TrainingConfig(epochs=2, patience=1, embedding_dim=16, hidden_dims=(16,), verbose=0,
                      learning_rate=1e-3)


class EpochLogs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.logs = []

    def on_epoch_end(self, epoch, logs=None):
        self.logs.append(dict(logs))


def test_the_same_seed_gives_the_same_figures_twice():
    data = load_digits_two_view()
    seen = EpochLogs()
    first = run_method("contrastive", data, FAST, seed=3, callbacks=[seen])[1]
    # User callbacks run after the validation evaluation, so they see its figures.
    assert [logs["val_avg_map"] for logs in seen.logs] == \
        first.history["contrastive"]["val_avg_map"]
    second = run_method("contrastive", data, FAST, seed=3)[1]
    assert first.test == second.test
    assert first.history == second.history


def test_every_method_builds_and_transfer_needs_a_source():
    for method in methods.available():
        if methods.get(method).needs_source:
            with pytest.raises(ValueError, match="trained source"):
                build_model(method, 10, FAST)
        else:
            assert build_model(method, 10, FAST) is not None
    with pytest.raises(ValueError, match="unknown method"):
        build_model("clip", 10, FAST)


@pytest.mark.parametrize("field, value, match", [
    ("epochs", 0, "epochs"), ("batch_size", -1, "batch_size"),
    ("learning_rate", 0.0, "learning_rate"), ("source_method", "met", "source_method"),
    ("soft_contrastive", {"delta": -1.0}, "delta"),
    ("method_options", {"control": {"label_mix": 2.0}}, "label_mix"),
    ("method_options", {"met": {}}, "takes no options"),
    ("source_folds", 0, "source_folds"), ("source_folds", True, "source_folds"),
])
def test_config_rejects_bad_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainingConfig(**{field: value})


def test_summary_is_the_mean_and_sample_std_over_seeds():
    rng = np.random.default_rng(0)
    results = [experiment.RunResult(
        method, seed, {key: float(rng.random()) for key in ("i2t_map", "t2i_map", "avg_map")},
        best_val_avg_map=float(rng.random()), epochs=1, seconds=1.0, history={})
        for method in ("a", "b") for seed in range(3)]
    # Failed runs are left out: a method whose every run failed has no row.
    failures = [experiment.RunFailure("a", 3, "diverged"), experiment.RunFailure("c", 0, "NaN")]
    table = summarize(results[:3] + failures + results[3:])
    assert list(table) == ["a", "b"]
    for method in ("a", "b"):
        runs = [r for r in results if r.method == method]
        values = [r.test["t2i_map"] for r in runs]
        assert table[method]["seeds"] == 3
        assert table[method]["t2i_map"] == pytest.approx(np.mean(values))
        assert table[method]["t2i_map_std"] == pytest.approx(np.std(values, ddof=1))
        assert table[method]["best_val_avg_map"] == pytest.approx(
            np.mean([r.best_val_avg_map for r in runs]))
    text = format_table(table)
    assert text.splitlines()[1].startswith("a") and f"{table['b']['avg_map']:.4f}" in text


class TrainingSteps(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_begin(self, logs=None):
        self.steps.append(self.params["steps"])


def test_out_of_fold_source_embeds_each_fold_with_the_source_that_never_saw_it():
    config = dataclasses.replace(FAST, source_folds=2, epochs=1)
    data = load_digits_two_view().with_validation(0.1, seed=1)
    steps = TrainingSteps()
    source = out_of_fold_source(data, config, seed=1, callbacks=[steps])
    train = data.train
    fold_ids = stratified_folds(train.labels, 2, seed=1)
    np.testing.assert_array_equal(source.fold_ids, fold_ids)
    assert source.image.shape == (train.num_pairs, 16) == source.text.shape
    assert len(source.encoders) == len(source.folds) == 2
    for fold, encoder in enumerate(source.encoders):
        held_out = fold_ids == fold
        np.testing.assert_allclose(source.image[held_out],
                                   encoder.encode_image(train.image[held_out]), atol=1e-5)
        np.testing.assert_allclose(source.text[held_out],
                                   encoder.encode_text(train.text[held_out]), atol=1e-5)
        # The fold's source trained on the other folds' pairs only.
        assert steps.steps[fold] == math.ceil((~held_out).sum() / config.batch_size)
    with pytest.raises(ValueError, match="source_folds >= 2"):
        out_of_fold_source(data, FAST)
    with pytest.raises(ValueError, match="validation split first"):
        out_of_fold_source(load_digits_two_view(), config)


def test_transfer_from_out_of_fold_sources_once_per_seed(monkeypatch):
    config = dataclasses.replace(FAST, source_folds=2, epochs=3)
    data = load_digits_two_view()
    calls = []

    def counted(*args, **kwargs):
        calls.append(args[2] if len(args) > 2 else kwargs.get("seed"))
        return out_of_fold_source(*args, **kwargs)

    monkeypatch.setattr(experiment.run, "out_of_fold_source", counted)
    results = experiment.compare(["met", "kim"], data, config, seeds=1, log=None)
    assert calls == [0]
    for result in results:
        assert len(result.source_folds) == 2 and "source" not in result.history
        assert 0.0 < result.test["avg_map"] <= 1.0
    # Another seed carves a validation split of the same size from other pairs.
    other = data.with_validation(0.1, seed=1).train
    assert other.num_pairs == data.with_validation(0.1, seed=0).train.num_pairs
    rows = np.zeros((other.num_pairs, 16), "float32")
    other_split = experiment.OutOfFoldSource(rows, rows, np.zeros(other.num_pairs, int), [], [],
                                             0.0, experiment.OutOfFoldSource.fingerprint(other))
    with pytest.raises(ValueError, match="made for another training split"):
        run_method("met", data, config, seed=0, source=other_split)
