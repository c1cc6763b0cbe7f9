"""met_selective: MET whose pairs trust their labels as far as the source agrees with them,
run end to end through the registry and the protocol."""

import dataclasses

import numpy as np
import pytest
from keras import ops

from keras_cmr import experiment, methods
from keras_cmr.datasets import load_digits_two_view
from keras_cmr.experiment import Run, TrainingConfig, build_model
from keras_cmr.losses.label_trust import label_agreement

FAST = TrainingConfig(epochs=2, patience=1, embedding_dim=8, hidden_dims=(8,), verbose=0,
                      soft_contrastive={"trust_temperature": 0.2},
                      label_noise={"rate": 0.4})


def test_met_selective_is_registered_as_a_transfer_method():
    entry = methods.get("met_selective")
    assert entry.needs_source and not entry.serves_as_source and entry.options is None


def test_met_and_met_selective_compare_on_shared_out_of_fold_sources():
    config = dataclasses.replace(FAST, source_folds=2)
    results = experiment.compare(["met", "met_selective"], load_digits_two_view(), config,
                                 seeds=1, log=None)
    assert [result.method for result in results] == ["met", "met_selective"]
    for result in results:
        assert 0.0 < result.test["avg_map"] <= 1.0 and result.epochs >= 1
        assert len(result.source_folds) == 2
    # The same sources, another loss: the two runs differ.
    assert results[0].test != results[1].test


def test_the_fit_gets_the_agreement_of_the_run_source():
    run = Run(load_digits_two_view(), dataclasses.replace(FAST, source_folds=2), seed=0)
    source = run.source()
    model = build_model("met_selective", run.dataset.num_classes, run.config, source)
    options = model.transfer_loss.options
    assert options == dataclasses.replace(FAST.soft_contrastive, trust="agreement")
    train = run.dataset.train
    inputs = model.training_inputs({"image": train.image, "text": train.text,
                                    **source.inputs()}, train.labels)
    expected = label_agreement(source.image, source.text, train.labels, temperature=0.2)
    np.testing.assert_allclose(inputs["label_trust"], ops.convert_to_numpy(expected),
                               rtol=1e-5, atol=1e-7)
    assert inputs["label_trust"].min() < 1.0 <= inputs["label_trust"].max()
    # Through the protocol, from a source trained on every pair (no folds).
    model, result = experiment.run_method("met_selective", load_digits_two_view(), FAST)
    assert model.transfer_loss.options.trust == "agreement"
    assert 0.0 < result.test["avg_map"] <= 1.0


def test_the_trust_option_of_the_config_and_the_control():
    with pytest.raises(ValueError, match="trust must be one of \\('global', 'agreement'\\)"):
        TrainingConfig(soft_contrastive={"trust": "labels"})
    with pytest.raises(ValueError, match="trust_temperature must be > 0"):
        TrainingConfig(method_options={"control": {"trust_temperature": -1.0}})
    agreement = dataclasses.replace(FAST, soft_contrastive={"trust": "agreement"})
    with pytest.raises(ValueError, match='no source to agree with .* trust="global"'):
        build_model("control", 10, agreement)
    # The control with its own options trains next to a selective MET.
    own = dataclasses.replace(agreement, method_options={"control": {"delta": 3.0}})
    assert build_model("control", 10, own).pair_loss.options.trust == "global"
