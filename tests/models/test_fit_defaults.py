"""The trainer's per-backend compile defaults and device-resident inputs change no number."""

import re

import keras
import numpy as np
import pytest

from keras_cmr.models import (CrossModalEncoder, DeviceBatches, TransferModel,
                              default_steps_per_execution)
from keras_cmr.models.inputs import device_inputs

BACKEND = keras.backend.backend()
# What each backend can run besides its default, compared with plain single steps, and the
# dropout rate of the comparison. Keras' PyTorch trainer takes steps_per_execution=1 only, and
# torch.compile needs minutes to compile: on torch the default itself is compared with an
# explicit (1, eager) compile; JAX keeps its jit default (eager JAX takes 15 s here). XLA on
# TensorFlow draws other dropout masks than TensorFlow's kernels (1% apart after 8 steps, our
# measurement), so it is compared without dropout.
VARIANTS = {
    "tensorflow": [({"steps_per_execution": 3}, 0.1),
                   ({"steps_per_execution": 4, "jit_compile": True}, 0.0)],
    "jax": [({"steps_per_execution": 4}, 0.1)],
    "torch": [({}, 0.1)],
}[BACKEND]


@pytest.fixture
def data(rng):
    labels = np.repeat(np.arange(2), 20)
    source = rng.normal(size=(2, 40, 4)).astype("float32")
    source /= np.linalg.norm(source, axis=-1, keepdims=True)
    x = {"image": rng.normal(size=(40, 6)).astype("float32"),
         "text": rng.normal(size=(40, 5)).astype("float32"),
         "source_image": source[0], "source_text": source[1]}
    return x, labels


def train(x, y, dropout=0.1, **compile_options):
    """Two epochs of 4 steps from the same initial weights and dropout seeds."""
    keras.utils.set_random_seed(0)
    model = TransferModel(CrossModalEncoder.projection(4, hidden_dims=(8,), dropout=dropout))
    model.compile(optimizer=keras.optimizers.Adam(1e-2, beta_1=0.5), **compile_options)
    losses = model.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0).history["loss"]
    return model, losses


def test_compile_takes_the_backends_steps_per_execution(data):
    expected = 20 if BACKEND == "tensorflow" else 1
    assert default_steps_per_execution() == expected
    model, _ = train(*data)
    assert model.steps_per_execution == min(expected, 4)  # fit's epochs have 4 steps
    assert model.get_compile_config()["steps_per_execution"] == "auto"
    assert model.get_compile_config()["jit_compile"] == "auto"


@pytest.mark.parametrize("options, dropout", VARIANTS, ids=str)
def test_grouped_and_compiled_steps_give_the_same_losses(data, options, dropout):
    reference, reference_losses = train(*data, dropout=dropout, steps_per_execution=1,
                                        jit_compile=BACKEND == "jax")
    model, losses = train(*data, dropout=dropout, **options)
    assert int(model.optimizer.iterations) == 8
    np.testing.assert_allclose(losses, reference_losses, rtol=1e-5)
    for weight, expected in zip(model.target.weights, reference.target.weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(weight),
                                   keras.ops.convert_to_numpy(expected), atol=1e-5)


def test_the_protocol_compiles_with_the_configs_jit_compile(rng, monkeypatch):
    from keras_cmr.config import TrainingConfig
    from keras_cmr.datasets import CrossModalDataset, CrossModalSplit
    from keras_cmr.experiment import build_model, fit_selected

    # A value that `compile` receives instead of "auto": True where XLA is cheap at these
    # shapes (an eager JAX fit compiles every op on its own), False on PyTorch (True would
    # cost a torch.compile).
    jit_compile = BACKEND != "torch"
    config = TrainingConfig(epochs=1, patience=1, embedding_dim=4, hidden_dims=(8,),
                            verbose=0, jit_compile=jit_compile)
    splits = [CrossModalSplit(rng.normal(size=(n, 6)), rng.normal(size=(n, 5)),
                              np.arange(n) % 2, name=name) for n, name in ((60, "train"),
                                                                          (20, "test"))]
    dataset = CrossModalDataset(*splits, num_classes=2).with_validation(0.2, seed=0)
    model = build_model("contrastive", 2, config)
    compiled_with = []

    def recording_compile(**kwargs):
        compiled_with.append(kwargs)
        return type(model).compile(model, **kwargs)

    monkeypatch.setattr(model, "compile", recording_compile)
    fit_selected(model, dataset, config, check_collapse=False)  # random data: near chance
    assert compiled_with[0]["jit_compile"] is jit_compile
    assert model.jit_compile is jit_compile
    assert model.get_compile_config()["jit_compile"] == "auto"  # a saved file stays neutral


class BuiltAtTrainBegin(keras.callbacks.Callback):
    """Records whether the model and its optimizer were built before the first step."""

    def on_train_begin(self, logs=None):
        self.built = (self.model.built, self.model.optimizer.built,
                      len(self.model.optimizer.variables))


def test_fit_builds_the_model_and_its_optimizer_before_the_first_step(data, rng):
    from keras_cmr.config import TrainingConfig
    from keras_cmr.datasets import CrossModalDataset, CrossModalSplit
    from keras_cmr.experiment import build_model, fit_selected

    # On arrays, through fit.
    model = TransferModel(CrossModalEncoder.projection(4, hidden_dims=(8,)))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    seen = BuiltAtTrainBegin()
    model.fit(*data, batch_size=10, epochs=1, verbose=0, callbacks=[seen])
    # Adam keeps two moments per trainable variable, besides its own counters.
    assert seen.built[:2] == (True, True)
    assert seen.built[2] >= 2 * len(model.trainable_variables) > 0
    # On batches, through the protocol.
    config = TrainingConfig(epochs=1, patience=1, embedding_dim=4, hidden_dims=(8,), verbose=0)
    splits = [CrossModalSplit(rng.normal(size=(n, 6)), rng.normal(size=(n, 5)),
                              np.arange(n) % 2, name=name) for n, name in ((60, "train"),
                                                                          (20, "test"))]
    dataset = CrossModalDataset(*splits, num_classes=2).with_validation(0.2, seed=0)
    model = build_model("contrastive", 2, config)
    seen = BuiltAtTrainBegin()
    fit_selected(model, dataset, config, callbacks=[seen], check_collapse=False)
    assert seen.built[:2] == (True, True)
    assert seen.built[2] >= 2 * len(model.trainable_variables) > 0


def test_callbacks_on_single_batches_see_every_batch(data):
    class Batches(keras.callbacks.Callback):
        seen = []

        def on_train_batch_end(self, batch, logs=None):
            self.seen.append(batch)

    keras.utils.set_random_seed(0)
    model = TransferModel(CrossModalEncoder.projection(4, hidden_dims=(8,)))
    model.compile(optimizer="adam")
    model.fit(*data, batch_size=10, epochs=2, verbose=0, callbacks=[Batches()])
    assert Batches.seen == [0, 1, 2, 3] * 2
    assert model.steps_per_execution == 1
    model.fit(*data, batch_size=10, epochs=1, verbose=0)
    # The backend's grouping, never longer than the epoch's 4 steps.
    assert model.steps_per_execution == min(default_steps_per_execution(), 4)
    assert int(model.optimizer.iterations) == 12


def test_the_progress_bar_counts_the_epochs_steps(data, capsys):
    keras.utils.set_random_seed(0)
    model = TransferModel(CrossModalEncoder.projection(4, hidden_dims=(8,)))
    model.compile(optimizer="adam")
    model.fit(*data, batch_size=10, epochs=1, verbose=1)
    counts = re.findall(r"(\d+)/4\b", capsys.readouterr().out)
    assert counts and max(int(count) for count in counts) == 4


def test_device_batches_gather_the_epochs_order_on_the_device(data):
    x, y = data
    batches = DeviceBatches(x, y, batch_size=10, seed=3)
    batches.on_epoch_end()  # fit moves to epoch 1 before the first epoch
    features, labels = batches[1]
    assert all(keras.ops.is_tensor(value) for value in [*features.values(), labels])
    rows = np.random.default_rng([3, 1]).permutation(40)[10:20]
    for key in x:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(features[key]), x[key][rows])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(labels), y[rows])
    assert len(batches) == 4 and len(DeviceBatches(x, y, batch_size=15)) == 3


def test_device_batches_train_as_numpy_arrays_do(data):
    # Without dropout: Keras' data loaders draw from the global RNG differently per input
    # kind (torch's DataLoader takes a seed from it), which moves later dropout masks. And
    # shuffle=False in fit: with True, Keras reorders a PyDataset's batches itself.
    _, expected = train(*data, dropout=0.0)
    keras.utils.set_random_seed(0)
    model = TransferModel(CrossModalEncoder.projection(4, hidden_dims=(8,), dropout=0.0))
    model.compile(optimizer=keras.optimizers.Adam(1e-2, beta_1=0.5))
    batches = DeviceBatches(*data, batch_size=10, shuffle=False)
    losses = model.fit(batches, epochs=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(losses, expected, rtol=1e-5)


def test_device_batches_refuse_bad_data(data):
    x, y = data
    bad = {**x, "text": x["text"].copy()}
    bad["text"][7, 1] = np.nan
    with pytest.raises(ValueError, match="'text' row 7 holds NaN"):
        DeviceBatches(bad, y)
    with pytest.raises(ValueError, match="'image' must be 2-D with one row per label"):
        DeviceBatches({**x, "image": x["image"][:5]}, y)
    with pytest.raises(ValueError, match="takes a dict"):
        DeviceBatches(x["image"], y)
    with pytest.raises(ValueError, match="40 pairs in batches of 39 leave a last batch"):
        DeviceBatches(x, y, batch_size=39)


def test_fit_checks_device_inputs_like_arrays(data):
    x, y = data
    tensors, labels = device_inputs(x, y)
    model = TransferModel(CrossModalEncoder.projection(4, hidden_dims=(8,)))
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="40 pairs in batches of 39 leave a last batch"):
        model.fit(tensors, labels, batch_size=39, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="pass both"):
        model.fit({key: tensors[key] for key in ("image", "text", "source_text")}, labels,
                  batch_size=10, epochs=1, verbose=0)


def test_compile_refuses_a_bad_steps_per_execution():
    model = TransferModel(CrossModalEncoder.projection(4, hidden_dims=(8,)))
    with pytest.raises(ValueError, match='steps_per_execution must be "auto" or a positive'):
        model.compile(optimizer="adam", steps_per_execution=0)
