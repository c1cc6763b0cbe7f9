"""The closed-form baselines as registered methods: "cca" and "label_regression"."""

import numpy as np
import pytest

from keras_cmr import experiment, linear, methods, saving
from keras_cmr.datasets import load_digits_two_view
from keras_cmr.evaluation import evaluate_retrieval
from keras_cmr.experiment import TrainingConfig
from keras_cmr.methods.linear import CCA_GRID, RIDGE_ALPHAS
from keras_cmr.models import ClosedFormModel

FAST = TrainingConfig(epochs=1, patience=1, embedding_dim=8, hidden_dims=(8,), verbose=0)


def figures(encoder, split):
    return evaluate_retrieval(encoder.encode_image(split.image), encoder.encode_text(split.text),
                              split.labels)


def test_closed_form_methods_run_through_compare_and_select_on_validation(tmp_path):
    dataset = load_digits_two_view()
    for name in ("cca", "label_regression"):
        assert name in methods.available() and methods.get(name).fit is not None
    logged = []
    results = experiment.compare(["cca", "label_regression"], dataset, FAST, seeds=1,
                                 log=logged.append, progress=False)
    table = experiment.summarize(results)
    assert set(table) == {"cca", "label_regression"} and len(logged) == 2
    carved = dataset.with_validation(FAST.validation_fraction, seed=0)
    cca, ridge = results
    assert cca.epochs == len(CCA_GRID) and ridge.epochs == len(RIDGE_ALPHAS)
    # The kept ridge map is the grid's best on validation, refitted here independently.
    curve = ridge.history["label_regression"]["val_avg_map"]
    best = linear.fit_label_regression(carved, alpha=RIDGE_ALPHAS[int(np.argmax(curve))])
    assert ridge.best_val_avg_map == pytest.approx(figures(best, carved.val)["avg_map"])
    assert ridge.test["avg_map"] == pytest.approx(figures(best, carved.test)["avg_map"],
                                                     abs=1e-6)
    for position, alpha in ((0, RIDGE_ALPHAS[0]), (-1, RIDGE_ALPHAS[-1])):
        fitted = linear.fit_label_regression(carved, alpha=alpha)
        assert curve[position] == pytest.approx(figures(fitted, carved.val)["avg_map"])


def test_a_solved_closed_form_model_saves_and_loads(tmp_path):
    carved = load_digits_two_view().with_validation(0.1, seed=0)
    model, stage = experiment.protocol.train_selected("cca", carved, FAST, seed=0)
    assert isinstance(model, ClosedFormModel) and stage["epochs"] == len(CCA_GRID)
    assert model.encoder.image_tower.output_dim == 8
    path = str(tmp_path / "model.keras")
    saving.save_model(model, path)
    loaded = saving.load_model(path)
    np.testing.assert_allclose(loaded.encoder.encode_text(carved.test.text),
                               model.encoder.encode_text(carved.test.text), atol=1e-6)
    with pytest.raises(ValueError, match="solved in closed form"):
        loaded.fit({"image": carved.train.image, "text": carved.train.text}, carved.train.labels)
    with pytest.raises(ValueError, match="holds no encoder yet"):
        ClosedFormModel()({"image": carved.test.image, "text": carved.test.text})
