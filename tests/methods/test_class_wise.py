"""The noise-robust class-wise sources: the prototype head with the generalized and with the
symmetric cross-entropy."""

import dataclasses

import numpy as np
import pytest
from keras import ops

from keras_cmr import losses, methods, saving
from keras_cmr.datasets import load_digits_two_view
from keras_cmr.experiment import TrainingConfig, compare
from keras_cmr.models import CrossModalEncoder, SourceModel
from keras_cmr.options import SymmetricCrossEntropyOptions

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


def test_the_sce_source_takes_its_weights_from_its_options_and_survives_saving(pairs, tmp_path):
    entry = methods.get("source_pcl_sce")
    assert entry.serves_as_source and entry.options is SymmetricCrossEntropyOptions
    build = entry.build
    encoder = CrossModalEncoder.projection(8, hidden_dims=(8,), dropout=0.0)
    default = build(encoder, 4, FAST, None).class_loss  # Wang et al.'s CIFAR-10 weights
    assert (default.alpha, default.beta) == (0.1, 1.0)
    config = dataclasses.replace(FAST, method_options={"source_pcl_sce": {"alpha": 0.5,
                                                                          "beta": 2.0}})
    model = build(encoder, 4, config, None)
    assert isinstance(model.class_loss, losses.SymmetricCrossEntropy)
    assert (model.head, model.sce) == ("prototype", SymmetricCrossEntropyOptions(0.5, 2.0))
    x, labels = pairs
    embeddings = model(x)
    logits = [model.classifier(embeddings[key]) for key in ("image", "text")]
    expected = np.mean(ops.convert_to_numpy(
        losses.symmetric_cross_entropy(*logits, labels=labels, alpha=0.5, beta=2.0)))
    np.testing.assert_allclose(ops.convert_to_numpy(model.compute_loss(x, labels, embeddings)),
                               expected, rtol=1e-5)
    path = str(tmp_path / "source.keras")
    saving.save_model(model, path)
    loaded = saving.load_model(path)
    assert loaded.sce == model.sce and loaded.class_loss.get_config() == model.class_loss.get_config()
    np.testing.assert_allclose(loaded.encode_image(x["image"]), model.encode_image(x["image"]),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="not to the regression head"):
        SourceModel(encoder, 4, head="regression", sce={"alpha": 1.0})
    with pytest.raises(ValueError, match="`gce_q` or `sce`, not both"):
        SourceModel(encoder, 4, head="prototype", gce_q=0.7, sce=SymmetricCrossEntropyOptions())
    with pytest.raises(ValueError, match="unknown"):
        SourceModel(encoder, 4, head="prototype", sce={"gamma": 1.0})


def test_met_transfers_from_the_sce_source_under_label_noise():
    config = dataclasses.replace(FAST, source_method="source_pcl_sce",
                                 label_noise={"rate": 0.4})
    [result] = compare(["met"], load_digits_two_view(), config, seeds=1, log=None)
    assert 0.0 < result.test["avg_map"] <= 1.0 and "source" in result.history
    with pytest.raises(ValueError, match="beta must be >= 0; received beta=-1"):
        TrainingConfig(method_options={"source_pcl_sce": {"beta": -1.0}})
