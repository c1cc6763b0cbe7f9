"""The naive sum as MET's source: a registered source like the class-wise ones."""

from keras_cmr import methods
from keras_cmr.datasets import load_digits_two_view
from keras_cmr.experiment import TrainingConfig, compare


def test_met_transfers_from_a_naive_sum_source():
    assert methods.get("naive_sum").serves_as_source and "naive_sum" in methods.sources()
    config = TrainingConfig(epochs=2, patience=1, embedding_dim=8, hidden_dims=(8,), verbose=0,
                            source_method="naive_sum")
    [result] = compare(["met"], load_digits_two_view(), config, seeds=1, log=None)
    assert 0.0 < result.test["avg_map"] <= 1.0
    assert result.history["source"]["epochs"] >= 1
