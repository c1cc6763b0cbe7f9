"""Failures that say so: a diverged loss and collapsed embeddings raise TrainingFailure."""

import itertools

import keras
import numpy as np
import pytest

from keras_cmr.callbacks import StopOnCollapse, StopOnNonFiniteLoss
from keras_cmr.datasets import CrossModalSplit
from keras_cmr.evaluation import chance_map, check_not_collapsed
from keras_cmr.failures import TrainingFailure
from keras_cmr.models import CrossModalEncoder


def test_a_learning_rate_of_1e12_stops_training_naming_the_epoch(rng):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(1e12), loss="mse")
    x = rng.normal(size=(32, 4)).astype("float32")
    history = keras.callbacks.History()
    with pytest.raises(TrainingFailure, match=r"loss became (nan|inf) in epoch 1 \(learning "
                                              r"rate 1e\+12\); try a lower learning rate"):
        model.fit(x, x[:, :1] * 3, batch_size=4, epochs=3, verbose=0,
                  callbacks=[StopOnNonFiniteLoss(), history])
    assert history.history == {}  # stopped before a second epoch began


def test_a_non_finite_epoch_loss_names_that_epoch():
    callback = StopOnNonFiniteLoss()
    callback.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    callback.on_epoch_end(1, {"loss": 0.5})  # finite: nothing happens
    with pytest.raises(TrainingFailure, match=r"loss became inf in epoch 3; try a lower"):
        callback.on_epoch_end(2, {"loss": float("inf")})


class FixedEmbeddings:
    """A stand-in encoder whose embeddings are given arrays."""

    def __init__(self, image, text):
        self.image, self.text = image, text

    def encode_image(self, _):
        return self.image

    def encode_text(self, _):
        return self.text


def split_of(labels, rng):
    return CrossModalSplit(rng.normal(size=(len(labels), 3)), rng.normal(size=(len(labels), 3)),
                           labels, name="val")


def test_an_encoder_with_constant_outputs_has_collapsed(rng):
    split = split_of(rng.integers(0, 3, size=40), rng)
    encoder = CrossModalEncoder.projection(embedding_dim=4, hidden_dims=(), dropout=0.0)
    encoder({"image": split.image[:1], "text": split.text[:1]})
    for weight in encoder.weights:  # zero kernels, unit biases: every input -> one point
        weight.assign(np.ones(weight.shape) if len(weight.shape) == 1 else np.zeros(weight.shape))
    callback = StopOnCollapse(split)
    callback.set_model(encoder)
    with pytest.raises(TrainingFailure, match="all 40 image embeddings of the val split are "
                                              "the same point"):
        callback.on_train_end()


def test_embeddings_unrelated_to_the_labels_rank_at_chance(rng):
    labels = rng.integers(0, 4, size=300)
    split = split_of(labels, rng)
    random = FixedEmbeddings(rng.normal(size=(300, 8)), rng.normal(size=(300, 8)))
    with pytest.raises(TrainingFailure, match=r"avg mAP on the val split is 0\.2\d+, not above "
                                              r"the chance level of its labels \(0\.2"):
        check_not_collapsed(random, split)
    # Embeddings that carry the labels pass, with figures that say by how much.
    informative = np.eye(4)[labels] + 0.3 * rng.normal(size=(300, 4))
    result = check_not_collapsed(FixedEmbeddings(informative, informative), split)
    assert result["avg_map"] > 0.8 and result["chance_map"] == pytest.approx(
        chance_map(labels, labels))


def test_nan_embeddings_are_a_failure(rng):
    split = split_of(rng.integers(0, 2, size=10), rng)
    image = rng.normal(size=(10, 4))
    image[3, 1] = np.nan
    with pytest.raises(TrainingFailure, match="image embeddings of the val split hold NaN"):
        check_not_collapsed(FixedEmbeddings(image, image), split)


def brute_force_chance(query_labels, gallery_labels):
    """Mean AP over every ordering of the gallery, for every query (tiny galleries only)."""
    values = []
    for query in query_labels:
        relevant = (gallery_labels == query if gallery_labels.ndim == 1
                    else (gallery_labels @ query) > 0)
        if not relevant.any():
            values.append(0.0)
            continue
        aps = []
        for order in itertools.permutations(range(len(gallery_labels))):
            hits = relevant[list(order)]
            precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
            aps.append((precision * hits).sum() / hits.sum())
        values.append(np.mean(aps))
    return float(np.mean(values))


def test_chance_map_is_the_expected_ap_of_a_random_ranking():
    gallery = np.array([0, 0, 1, 2, 0, 1])
    queries = np.array([0, 1, 2, 3])  # class 3 has no relevant item: counts 0
    assert chance_map(queries, gallery) == pytest.approx(brute_force_chance(queries, gallery))
    multi_gallery = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 0], [1, 0, 1]])
    multi_queries = np.array([[0, 1, 0], [1, 0, 1], [0, 0, 1]])
    assert chance_map(multi_queries, multi_gallery) == pytest.approx(
        brute_force_chance(multi_queries, multi_gallery))
    with pytest.raises(ValueError, match="both 1-D class ids or both 2-D multi-hot"):
        chance_map(queries, multi_gallery)


def test_without_the_chance_test_only_nan_and_one_point_are_collapse(rng):
    labels = rng.integers(0, 4, size=300)
    split = split_of(labels, rng)
    random = FixedEmbeddings(rng.normal(size=(300, 8)), rng.normal(size=(300, 8)))
    result = check_not_collapsed(random, split, check_chance=False)
    assert result["chance_map"] == pytest.approx(chance_map(labels, labels))
    assert abs(result["avg_map"] - result["chance_map"]) < 0.01  # what the chance test catches
    constant = FixedEmbeddings(np.ones((300, 8)), rng.normal(size=(300, 8)))
    with pytest.raises(TrainingFailure, match="all 300 image embeddings"):
        check_not_collapsed(constant, split, check_chance=False)
    image = rng.normal(size=(300, 8))
    image[5, 0] = np.inf
    callback = StopOnCollapse(split, check_chance=False)
    callback.set_model(FixedEmbeddings(image, image))
    with pytest.raises(TrainingFailure, match="hold NaN or inf"):
        callback.on_train_end()
