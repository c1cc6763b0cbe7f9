"""The shared protocol: determinism, method construction, the summary table."""

import keras
import numpy as np
import pytest

from keras_cmr.datasets import load_digits_two_view
from keras_cmr.experiment import (METHODS, TrainingConfig, build_model, format_table,
                                  run_method, summarize)

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
        first["history"]["contrastive"]["val_avg_map"]
    second = run_method("contrastive", data, FAST, seed=3)[1]
    assert first["test"] == second["test"]
    assert first["history"] == second["history"]


def test_every_method_builds_and_transfer_needs_a_source():
    for method in METHODS:
        if method in ("met", "kim"):
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
    ("control_soft_contrastive", {"label_mix": 2.0}, "label_mix"),
])
def test_config_rejects_bad_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainingConfig(**{field: value})


def test_summary_is_the_mean_and_sample_std_over_seeds():
    rng = np.random.default_rng(0)
    results = [{"method": method, "best_val_avg_map": float(rng.random()),
                "test": {key: float(rng.random()) for key in ("i2t_map", "t2i_map", "avg_map")}}
               for method in ("a", "b") for _ in range(3)]
    table = summarize(results)
    for method in ("a", "b"):
        values = [r["test"]["t2i_map"] for r in results if r["method"] == method]
        assert table[method]["seeds"] == 3
        assert table[method]["t2i_map"] == pytest.approx(np.mean(values))
        assert table[method]["t2i_map_std"] == pytest.approx(np.std(values, ddof=1))
    text = format_table(table)
    assert text.splitlines()[1].startswith("a") and f"{table['b']['avg_map']:.4f}" in text
