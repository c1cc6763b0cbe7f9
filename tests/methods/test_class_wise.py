"""The noise-robust class-wise source: the prototype head with the generalized cross-entropy."""

import dataclasses

import numpy as np
import pytest
from keras import ops

from keras_cmr import losses, methods, saving
from keras_cmr.datasets import load_digits_two_view
from keras_cmr.experiment import TrainingConfig, compare
from keras_cmr.models import CrossModalEncoder, SourceModel

FAST = TrainingConfig(epochs=2, patience=1, embedding_dim=8, hidden_dims=(8,), verbose=0)


def test_the_source_takes_q_from_its_options_and_trains_on_the_generalized_cross_entropy(
        pairs, tmp_path):
    build = methods.get("source_pcl_gce").build
    encoder = CrossModalEncoder.projection(8, hidden_dims=(8,), dropout=0.0)
    assert build(encoder, 4, FAST, None).class_loss.q == 0.7  # Zhang and Sabuncu's q
    config = dataclasses.replace(FAST, method_options={"source_pcl_gce": {"q": 0.4}})
    model = build(encoder, 4, config, None)
    assert isinstance(model.class_loss, losses.GeneralizedCrossEntropy)
    assert (model.head, model.gce_q, model.class_loss.q) == ("prototype", 0.4, 0.4)
    x, labels = pairs
    embeddings = model(x)
    logits = [model.classifier(embeddings[key]) for key in ("image", "text")]
    expected = np.mean(ops.convert_to_numpy(
        losses.generalized_cross_entropy(*logits, labels=labels, q=0.4)))
    got = model.compute_loss(x, labels, embeddings)
    np.testing.assert_allclose(ops.convert_to_numpy(got), expected, rtol=1e-5)
    path = str(tmp_path / "source.keras")
    saving.save_model(model, path)
    loaded = saving.load_model(path)
    assert loaded.gce_q == 0.4 and isinstance(loaded.class_loss, losses.GeneralizedCrossEntropy)
    with pytest.raises(ValueError, match="not to the regression head"):
        SourceModel(encoder, 4, head="regression", gce_q=0.5)


def test_met_transfers_from_the_robust_source_under_label_noise():
    config = dataclasses.replace(FAST, source_method="source_pcl_gce",
                                 label_noise={"rate": 0.4})
    [result] = compare(["met"], load_digits_two_view(), config, seeds=1, log=None)
    assert 0.0 < result.test["avg_map"] <= 1.0 and "source" in result.history
    with pytest.raises(ValueError, match=r"q must be in \(0, 1\]; received q=0"):
        TrainingConfig(method_options={"source_pcl_gce": {"q": 0}})
