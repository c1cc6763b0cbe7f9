"""One seed's training figures on this backend, written to an .npz (run by test_alike.py here
and, as a script, on another backend): `python alike_job.py OUT.npz`."""

import sys

import keras
import numpy as np

from keras_cmr.datasets import load_digits_two_view
from keras_cmr.experiment import TrainingConfig, run_with_source
from keras_cmr.models import CrossModalEncoder, SourceModel, TransferModel

# Keras' default step on each backend (JAX: XLA; TensorFlow: a graph; PyTorch: eager), then
# the eager and the compiled step everywhere.
MODES = {"default": {}, "eager": {"run_eagerly": True}, "compiled": {"jit_compile": True}}
RUN = TrainingConfig(epochs=3, patience=5, embedding_dim=8, hidden_dims=(16,), verbose=0)


def _weights(model):
    """The weights the model trains (the target's, not its frozen source's)."""
    return [np.array(keras.ops.convert_to_numpy(weight)) for weight in model.trainable_weights]


def stage_figures(mode, stages=("source", "target"), batch_size=20):
    """Initial weights, weights after one epoch and its loss, of a prototype source and of
    MET's target on it, both with dropout 0.2, on 50 rows (batch 20: a last step of 10)."""
    rng = np.random.default_rng(0)
    x = {"image": rng.normal(size=(50, 12)).astype("float32"),
         "text": rng.normal(size=(50, 5)).astype("float32")}
    labels = np.repeat(np.arange(5), 10)
    shapes = {key: (None, value.shape[1]) for key, value in x.items()}
    keras.utils.set_random_seed(5)
    source = SourceModel(CrossModalEncoder.projection(8, hidden_dims=(16,), dropout=0.2), 5,
                         head="prototype")
    figures = {}
    for name in stages:
        # The target freezes its source when made: after the source's step.
        model = source if name == "source" else TransferModel(
            CrossModalEncoder.projection(8, hidden_dims=(16,), dropout=0.2), source)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), **MODES[mode])
        model.build(shapes)
        initial = _weights(model)
        loss = model.fit(x, labels, batch_size=batch_size, epochs=1, shuffle=False,
                         verbose=0).history["loss"]
        figures[f"{mode}_{name}_loss"] = np.array(loss)
        trained = _weights(model)
        assert any(np.any(before != after) for before, after in zip(initial, trained)), name
        for index, (before, after) in enumerate(zip(initial, trained)):
            figures[f"{mode}_{name}_initial_{index}"] = before
            figures[f"{mode}_{name}_trained_{index}"] = after
    return figures


def run_figures():
    """MET on the digits (its source first), 3 epochs: the validation curves and test mAP."""
    result = run_with_source("met", load_digits_two_view(), RUN, seed=2)[1]
    return {"source_val": np.array(result.history["source"]["val_avg_map"]),
            "met_val": np.array(result.history["met"]["val_avg_map"]),
            "met_test": np.array(result.test["avg_map"])}


def all_figures():
    """What the next backend is compared on: Keras' default steps and a whole run."""
    return {**stage_figures("default"), **run_figures()}


if __name__ == "__main__":
    np.savez(sys.argv[1], **all_figures())
