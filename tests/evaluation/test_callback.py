"""RetrievalEvaluation and evaluate_model with a tiny two-tower model, on every backend."""

import warnings

import keras
import numpy as np
import pytest

from keras_cmr.evaluation import RetrievalEvaluation, evaluate_model, evaluate_retrieval


def two_tower(image_dims=8, text_dims=6, embed_dims=4):
    image = keras.Input((image_dims,), name="image")
    text = keras.Input((text_dims,), name="text")
    outputs = {
        "image": keras.layers.UnitNormalization()(keras.layers.Dense(embed_dims)(image)),
        "text": keras.layers.UnitNormalization()(keras.layers.Dense(embed_dims)(text)),
    }
    model = keras.Model({"image": image, "text": text}, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss={"image": "mse", "text": "mse"})
    return model


def paired_data(rng, n=48):
    labels = rng.integers(0, 4, n)
    image = (rng.standard_normal((n, 8)) + labels[:, None]).astype("float32")
    text = (rng.standard_normal((n, 6)) - labels[:, None]).astype("float32")
    # Targets that pull the towers apart per class, so training changes the mAP.
    targets = {
        "image": np.eye(4, dtype="float32")[labels],
        "text": np.eye(4, dtype="float32")[labels],
    }
    return {"image": image, "text": text}, targets, labels


def test_callback_feeds_early_stopping_and_matches_evaluate_retrieval(rng):
    keras.utils.set_random_seed(0)
    inputs, targets, labels = paired_data(rng)
    model = two_tower()
    evaluation = RetrievalEvaluation(inputs["image"], inputs["text"], labels,
                                     metrics=("map", "precision"), batch_size=16)
    stopping = keras.callbacks.EarlyStopping(monitor="val_avg_map", mode="max", patience=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(inputs, targets, epochs=2, batch_size=16, verbose=0,
                            callbacks=[evaluation, stopping])
    assert not [w for w in caught if "val_avg_map" in str(w.message)]
    assert len(history.history["val_avg_map"]) == 2
    assert history.history["val_avg_map"] == evaluation.history["val_avg_map"]
    assert evaluation.history["epoch"] == [0, 1]
    assert stopping.best == pytest.approx(max(history.history["val_avg_map"]))
    embeddings = model.predict(inputs, verbose=0)
    expected = evaluate_retrieval(embeddings["image"], embeddings["text"], labels,
                                  metrics=("map", "precision"))
    for key, value in expected.items():
        assert history.history[f"val_{key}"][-1] == pytest.approx(value, abs=1e-6), key
    assert set(expected) == {key[len("val_"):] for key in history.history if key.startswith("val_")}
    assert evaluate_model(model, inputs["image"], inputs["text"], labels,
                          metrics=("map", "precision")) == pytest.approx(expected, abs=1e-6)


def test_skipped_epochs_repeat_the_last_values(rng):
    keras.utils.set_random_seed(1)
    inputs, targets, labels = paired_data(rng)
    model = two_tower()
    evaluation = RetrievalEvaluation(inputs["image"], inputs["text"], labels, every_n_epochs=3,
                                     prefix="dev_")
    history = model.fit(inputs, targets, epochs=4, batch_size=16, verbose=0,
                        callbacks=[evaluation])
    # Evaluated after epochs 1 and 3 (0-based 0 and 2); epochs 2 and 4 repeat those values.
    assert evaluation.history["epoch"] == [0, 2]
    values = history.history["dev_avg_map"]
    assert len(values) == 4
    assert values[1] == values[0] and values[3] == values[2]
    assert values[0] != values[2]
    assert evaluation.history["dev_i2t_map"] == history.history["dev_i2t_map"][::2]
    # A new fit starts without the old values: its first epoch (5, not a multiple of 3) is
    # evaluated.
    resumed = model.fit(inputs, targets, epochs=6, initial_epoch=4, batch_size=16, verbose=0,
                        callbacks=[evaluation])
    assert evaluation.history["epoch"] == [4, 5]
    assert resumed.history["dev_avg_map"] == evaluation.history["dev_avg_map"]


def test_callback_and_evaluate_model_reject_non_dict_outputs(rng):
    inputs, _, labels = paired_data(rng, n=8)
    image = keras.Input((8,), name="image")
    text = keras.Input((6,), name="text")
    model = keras.Model({"image": image, "text": text},
                        keras.layers.Concatenate()([image, text]))
    with pytest.raises(ValueError, match="dict with keys 'image' and 'text'"):
        evaluate_model(model, inputs["image"], inputs["text"], labels)
    evaluation = RetrievalEvaluation(inputs["image"], inputs["text"], labels)
    evaluation.set_model(model)
    with pytest.raises(ValueError, match="dict with keys 'image' and 'text'"):
        evaluation.on_epoch_end(0, {})
    with pytest.raises(ValueError, match="`every_n_epochs` must be an integer >= 1"):
        RetrievalEvaluation(inputs["image"], inputs["text"], labels, every_n_epochs=0)
    with pytest.raises(ValueError, match="Unknown metric 'mAP'"):
        RetrievalEvaluation(inputs["image"], inputs["text"], labels, metrics=("mAP",))
