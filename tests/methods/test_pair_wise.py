"""Supervised InfoNCE as MET's source: a pair-wise model the transfer methods learn from,
trained on every pair or out-of-fold, with the label agreement of met_selective read from its
embeddings."""

import dataclasses

import numpy as np
from keras import ops

from keras_cmr import methods
from keras_cmr.datasets import load_digits_two_view
from keras_cmr.experiment import Run, TrainingConfig, build_model, compare
from keras_cmr.losses.label_trust import label_agreement

FAST = TrainingConfig(epochs=2, patience=1, embedding_dim=8, hidden_dims=(8,), verbose=0,
                      source_method="supervised_infonce", label_noise={"rate": 0.4},
                      soft_contrastive={"trust_temperature": 0.2})


def test_supervised_infonce_alone_of_the_pair_losses_serves_as_source():
    serving = {name for name in ("contrastive", "triplet", "infonce", "supervised_infonce")
               if methods.get(name).serves_as_source}
    assert serving == {"supervised_infonce"} <= set(methods.sources())


def test_the_transfer_methods_learn_from_the_listed_supervised_infonce_model():
    results = compare(["supervised_infonce", "met", "kim", "met_selective"],
                      load_digits_two_view(), FAST, seeds=1, log=None)
    assert [result.method for result in results] == ["supervised_infonce", "met", "kim",
                                                        "met_selective"]
    for result in results:
        assert 0.0 < result.test["avg_map"] <= 1.0
        assert "source" not in result.history  # the listed model served, none trained again


def test_out_of_fold_supervised_infonce_sources_give_met_selective_its_agreement():
    run = Run(load_digits_two_view(), dataclasses.replace(FAST, source_folds=2), seed=0)
    source = run.source()
    assert len(source.folds) == 2 and all(isinstance(fold, dict) for fold in source.folds)
    model = build_model("met_selective", run.dataset.num_classes, run.config, source)
    train = run.dataset.train
    inputs = model.training_inputs({"image": train.image, "text": train.text,
                                    **source.inputs()}, train.labels)
    expected = label_agreement(source.image, source.text, train.labels, temperature=0.2)
    np.testing.assert_allclose(inputs["label_trust"], ops.convert_to_numpy(expected),
                               rtol=1e-5, atol=1e-7)
    assert 0.0 < inputs["label_trust"].min() < 1.0 <= inputs["label_trust"].max()
    trained, result, _ = run.method("met_selective")
    assert trained.transfer_loss.options.trust == "agreement"
    assert 0.0 < result.test["avg_map"] <= 1.0 and len(result.source_folds) == 2
