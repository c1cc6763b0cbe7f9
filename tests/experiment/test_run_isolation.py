"""A (method, seed) run gives the same figures whatever `compare` runs before or beside it."""

import functools

from keras_cmr.datasets import load_digits_two_view
from keras_cmr.experiment import TrainingConfig, compare

# Label noise on, as in the noise study; source_pcl is the source the transfer methods use.
NOISY = TrainingConfig(epochs=2, patience=1, embedding_dim=8, hidden_dims=(8,), verbose=0,
                       label_noise={"rate": 0.4}, source_method="source_pcl")


@functools.cache
def met_alone():
    """MET's result when `compare` runs it alone (it trains its own source first)."""
    [result] = compare(["met"], load_digits_two_view(), NOISY, seeds=1, log=None)
    return result


def by_method(results):
    return {result.method: result for result in results}


def test_met_gives_its_figures_alone_after_kim_and_a_source_method():
    # kim trains the seed's source, which met then shares; source_pcl and contrastive run
    # between them with their own models.
    together = by_method(compare(["kim", "source_pcl", "contrastive", "met"],
                                 load_digits_two_view(), NOISY, seeds=1, log=None))
    alone = met_alone()
    assert together["met"].test == alone.test
    assert together["met"].history["met"] == alone.history["met"]
    # The source met shared is the one it trains alone, and so is source_pcl's own model.
    assert together["kim"].history["source"] == alone.history["source"]
    assert together["source_pcl"].history["source_pcl"] == alone.history["source"]


def test_met_after_the_listed_source_method_learns_from_that_same_source():
    together = by_method(compare(["source_pcl", "met"], load_digits_two_view(), NOISY, seeds=1,
                                 log=None))
    alone = met_alone()
    assert "source" not in together["met"].history  # it reused source_pcl's model
    assert together["met"].test == alone.test
    assert together["met"].history["met"] == alone.history["met"]
    assert alone.label_noise is not None
    assert together["met"].label_noise == alone.label_noise
