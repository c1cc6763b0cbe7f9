"""Compiled steps shared across the runs of a comparison: the numbers of separate runs."""

import keras
import numpy as np

from keras_cmr.datasets import load_digits_two_view
from keras_cmr.evaluation import evaluate_retrieval
from keras_cmr.evaluation.embedding import embed_pairs
from keras_cmr.experiment import CompiledSteps, TrainingConfig, compiled, run_with_source

# One source: met trains its source_pcl model, then a model holding that (frozen) source,
# whose weights differ from seed to seed and must not be the lender's.
FAST = TrainingConfig(epochs=3, patience=1, embedding_dim=8, hidden_dims=(8,), verbose=0)


def _run(data, seed, steps=None):
    """(model, result) of met with its source."""
    model, result, _ = run_with_source("met", data, FAST, seed=seed, steps=steps)
    return model, result


def test_shared_steps_give_the_figures_of_separate_runs():
    data = load_digits_two_view()
    steps = CompiledSteps()
    lender = _run(data, seed=0, steps=steps)[0]
    borrower, together = _run(data, seed=1, steps=steps)
    alone_model, alone = _run(data, seed=1)  # without shared steps: its own
    # Seed 1's source and met ran seed 0's compiled steps (on JAX).
    assert alone.test == together.test
    assert alone.history == together.history
    lent = borrower.train_function is lender.train_function
    assert lent == (keras.backend.backend() == "jax")
    assert alone_model.train_function is not lender.train_function


def test_embedding_by_batches_matches_predict_and_a_small_product_is_exact():
    data = load_digits_two_view()
    model = run_with_source("contrastive", data, FAST, seed=0)[0]
    image, text = data.test.image[:300], data.test.text[:300]
    predicted = model.predict({"image": image, "text": text}, batch_size=128, verbose=0)
    embedded = embed_pairs(model, image, text, batch_size=128)  # 3 batches, the last of 44
    np.testing.assert_array_equal(embedded[0], predicted["image"])
    np.testing.assert_array_equal(embedded[1], predicted["text"])
    # Small products run in one BLAS thread: mAP against a plain argsort reference.
    labels = data.test.labels[:300]
    scores = embedded[0] / np.linalg.norm(embedded[0], axis=1, keepdims=True) @ (
        embedded[1] / np.linalg.norm(embedded[1], axis=1, keepdims=True)).T
    order = np.argsort(-scores, axis=1, kind="stable")
    relevant = labels[order] == labels[:, None]
    precision = np.cumsum(relevant, axis=1) / np.arange(1, relevant.shape[1] + 1)
    reference = np.mean((precision * relevant).sum(1) / np.maximum(relevant.sum(1), 1))
    assert abs(evaluate_retrieval(*embedded, labels)["i2t_map"] - reference) < 1e-6


def test_a_model_above_the_size_limit_lends_nothing(monkeypatch):
    monkeypatch.setattr(compiled, "MAX_LENDER_BYTES", 0)
    data = load_digits_two_view()
    steps = CompiledSteps()
    first = run_with_source("contrastive", data, FAST, seed=0, steps=steps)[0]
    second = run_with_source("contrastive", data, FAST, seed=1, steps=steps)[0]
    assert second.train_function is not first.train_function
