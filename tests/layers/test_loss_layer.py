"""SoftContrastiveLossLayer in a plain functional keras.Model: compile without a loss, fit
without y, the same loss as soft_contrastive, a .keras round trip; the example and the README
paragraph that use it."""

import ast
import importlib.util
import os
import re

import keras
import numpy as np
import pytest
from keras import ops

from keras_cmr.layers import ProjectionTower, SoftContrastiveLossLayer
from keras_cmr.losses import soft_contrastive

N = 8
OPTIONS = {"sigma": 0.5, "label_mix": 0.5, "calibration": "row"}
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def batch(rng):
    return {"image": rng.normal(size=(N, 6)).astype("float32"),
            "text": rng.normal(size=(N, 5)).astype("float32"),
            "source_image": rng.normal(size=(N, 3)).astype("float32"),
            "source_text": rng.normal(size=(N, 3)).astype("float32"),
            "labels": np.array([0, 1, 2, 0, 1, 2, 0, 1], dtype="int32")}


def functional_model():
    inputs = {"image": keras.Input((6,), name="image"), "text": keras.Input((5,), name="text"),
              "source_image": keras.Input((3,), name="source_image"),
              "source_text": keras.Input((3,), name="source_text"),
              "labels": keras.Input((), dtype="int32", name="labels")}
    u = ProjectionTower(4, hidden_dims=(8,), dropout=0.0, name="image_tower")(inputs["image"])
    v = keras.layers.Dense(4, name="text_tower")(inputs["text"])
    outputs = SoftContrastiveLossLayer(name="loss_layer", **OPTIONS)(
        u, v, inputs["source_image"], inputs["source_text"], labels=inputs["labels"])
    return keras.Model(inputs, outputs)


def expected_loss(model, batch):
    u, v = model.predict(batch, batch_size=N, verbose=0)
    return float(ops.convert_to_numpy(ops.mean(soft_contrastive(
        u, v, batch["source_image"], batch["source_text"], labels=batch["labels"], **OPTIONS))))


def test_functional_model_fits_without_a_loss_or_y_and_reports_soft_contrastive(batch, tmp_path):
    model = functional_model()
    model.compile(optimizer=keras.optimizers.Adam(0.05))  # an optimizer only, no loss
    before = expected_loss(model, batch)
    np.testing.assert_allclose(model.evaluate(batch, batch_size=N, verbose=0), before,
                               rtol=1e-5)
    # One batch per epoch: each epoch reports the loss at the weights it starts from.
    losses = model.fit(batch, batch_size=N, epochs=4, verbose=0).history["loss"]
    np.testing.assert_allclose(losses[0], before, rtol=1e-5)
    assert losses[-1] < losses[0]  # the added loss reaches the towers' gradients

    path = str(tmp_path / "functional.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    for got, want in zip(loaded.predict(batch, batch_size=N, verbose=0),
                         model.predict(batch, batch_size=N, verbose=0)):
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert loaded.get_layer("loss_layer").get_config()["calibration"] == "row"


def test_layer_passes_inputs_through_and_adds_the_no_source_control(batch):
    layer = SoftContrastiveLossLayer(delta=1.2, label_mix=0.5)
    u, v = batch["source_image"], batch["source_text"]
    outputs = layer(u, v, labels=batch["labels"])
    for got, want in zip(outputs, (u, v)):
        np.testing.assert_array_equal(ops.convert_to_numpy(got), want)
    expected = ops.mean(soft_contrastive(u, v, labels=batch["labels"], delta=1.2, label_mix=0.5))
    np.testing.assert_allclose(ops.convert_to_numpy(layer.losses[0]),
                               ops.convert_to_numpy(expected), rtol=1e-6)
    config = layer.get_config()
    assert (config["delta"], config["label_mix"]) == (1.2, 0.5)
    assert SoftContrastiveLossLayer.from_config(config).get_config() == config


def test_layer_names_a_bad_option():
    with pytest.raises(ValueError, match="calibration must be one of"):
        SoftContrastiveLossLayer(calibration="z")


def test_functional_loss_layer_example_trains_evaluates_and_reloads(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "functional_loss_layer", os.path.join(REPO_ROOT, "examples", "functional_loss_layer.py"))
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    # 1438 training pairs in 2 equal batches: no ragged last batch to compile again.
    figures = example.main(["--epochs", "8", "--batch-size", "719", "--learning-rate", "0.01",
                            "--embedding-dim", "8", "--hidden-dim", "16", "--quiet",
                            "--output", str(tmp_path / "met.keras")])
    assert figures["reloaded_identical"]
    assert np.isfinite(figures["loss"]).all()
    # 10 balanced classes: a random ranking scores about 0.1.
    assert 0.15 < figures["target"] <= 1.0


def test_readme_loss_layer_example_runs(capsys):
    with open(os.path.join(REPO_ROOT, "README.md")) as stream:
        text = stream.read()
    section = text[text.index("## The loss as a layer"):]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    exec(compile(code, "README.md", "exec"), {})
    losses = ast.literal_eval(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(losses) == 2 and all(np.isfinite(losses))
