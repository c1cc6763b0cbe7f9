"""Models: fit on every backend, frozen source, .keras round trips that continue training."""

import os

import keras
import numpy as np
import pytest

import keras_cmr
from keras_cmr import losses
from keras_cmr.models import (CrossModalEncoder, DSCMRModel, PairwiseModel, SourceModel,
                              TransferModel)

NUM_CLASSES = 4  # the classes of the `pairs` fixture (tests/conftest.py)


def encoder(name=None, dropout=0.1):
    return CrossModalEncoder.projection(8, hidden_dims=(16,), dropout=dropout, name=name)


def trained_source(pairs):
    x, y = pairs
    source = SourceModel(encoder("source_encoder"), NUM_CLASSES)
    source.compile(optimizer=keras.optimizers.Adam(1e-2))
    source.fit(x, y, batch_size=20, epochs=1, verbose=0)
    return source


def make_model(kind, pairs, dropout=0.1):
    def fresh():
        return encoder(dropout=dropout)

    builders = {
        "pairwise_contrastive": lambda: PairwiseModel(fresh(), losses.ContrastiveLoss()),
        "pairwise_infonce_learned": lambda: PairwiseModel(
            fresh(), losses.InfoNCELoss(temperature=0.1), learn_temperature=True),
        "source_cosine": lambda: SourceModel(fresh(), NUM_CLASSES),
        "source_prototype": lambda: SourceModel(fresh(), NUM_CLASSES, head="prototype"),
        "naive_sum": lambda: SourceModel(fresh(), NUM_CLASSES,
                                         pair_loss=losses.ContrastiveLoss()),
        "dscmr": lambda: DSCMRModel(fresh(), NUM_CLASSES),
        "transfer": lambda: TransferModel(fresh(), trained_source(pairs)),
    }
    return builders[kind]()


MODEL_KINDS = ["pairwise_contrastive", "pairwise_infonce_learned", "source_cosine",
               "source_prototype", "naive_sum", "dscmr", "transfer"]


def weights_of(model):
    return [np.array(w) for w in model.get_weights()]


def test_transfer_keeps_the_source_frozen(pairs):
    x, y = pairs
    model = make_model("transfer", pairs)
    before = weights_of(model.source)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, y, batch_size=20, epochs=2, verbose=0)
    assert model.source.trainable_weights == []
    for old, new in zip(before, weights_of(model.source)):
        np.testing.assert_array_equal(old, new)
    assert model.target is model.encoder


def test_transfer_refuses_a_source_that_is_not_an_encoder():
    with pytest.raises(TypeError, match="source"):
        TransferModel(encoder(), keras.layers.Dense(3))


def test_precomputed_source_embeddings_train_as_the_source_does(pairs, tmp_path):
    x, y = pairs
    source = trained_source(pairs)
    given = {**x, "source_image": source.encode_image(x["image"]),
             "source_text": source.encode_text(x["text"])}
    with_source = TransferModel(encoder(dropout=0.0), source)
    precomputed = TransferModel(encoder(dropout=0.0))
    for model in (with_source, precomputed):
        model.encoder({"image": x["image"][:2], "text": x["text"][:2]})
    precomputed.encoder.set_weights(with_source.encoder.get_weights())
    for model, inputs in ((with_source, x), (precomputed, given)):
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.fit(inputs, y, batch_size=20, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(weights_of(with_source.encoder), weights_of(precomputed.encoder)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    path = str(tmp_path / "precomputed.keras")
    precomputed.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.source is None
    np.testing.assert_allclose(loaded.encoder.encode_image(x["image"]),
                               precomputed.encoder.encode_image(x["image"]), rtol=1e-5,
                               atol=1e-6)


def test_precomputed_source_embeddings_are_checked(pairs):
    x, y = pairs
    s = np.ones((len(y), 8), "float32")
    model = TransferModel(encoder())
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="no source model"):
        model.fit(x, y, batch_size=20, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="pass both .* received only 'source_image'"):
        model.fit({**x, "source_image": s}, y, batch_size=20, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="source_text must be a 2-D array with one row per "
                                         "pair \\(40\\); received shape \\(39, 8\\)"):
        model.fit({**x, "source_image": s, "source_text": s[:39]}, y, batch_size=20, verbose=0)
    broken = s.copy()
    broken[7, 2] = np.nan
    with pytest.raises(ValueError, match="source_image row 7 holds NaN"):
        model.fit({**x, "source_image": broken, "source_text": s}, y, batch_size=20,
                  verbose=0)


def test_fit_without_labels_or_with_a_bad_input_dict_fails_clearly(pairs):
    x, y = pairs
    model = make_model("pairwise_contrastive", pairs)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="image"):
        model.predict({"pictures": x["image"], "text": x["text"]}, verbose=0)
    with pytest.raises(ValueError, match="same number of pairs"):
        model({"image": x["image"][:5], "text": x["text"][:4]})
    with pytest.raises(ValueError, match="trains on class labels"):
        model.fit(x, epochs=1, verbose=0)
    weighted = make_model("pairwise_contrastive", pairs)  # a failed trace spoils a JAX model
    weighted.compile(optimizer="adam")
    with pytest.raises(ValueError, match="per-sample weights"):
        weighted.fit(x, y, sample_weight=np.ones(len(y)), epochs=1, verbose=0)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_fit_then_keras_round_trip_predicts_the_same_and_continues_training(kind, pairs,
                                                                          tmp_path):
    x, y = pairs
    keras.utils.set_random_seed(0)
    # Dropout off: Keras does not save seed-generator states, so dropout masks after a
    # reload differ, and the continued step could not be compared exactly.
    model = make_model(kind, pairs, dropout=0.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x, y, batch_size=20, epochs=4, verbose=0).history["loss"]
    assert np.all(np.isfinite(history)) and history[-1] < history[0], history
    # One batch shape per step function (predict on all 40 rows, the continued fit in the
    # first fit's batches): each shape is another trace or compile on TensorFlow and JAX.
    original = model.predict(x, batch_size=40, verbose=0)
    assert original["image"].shape == (40, 8) and original["text"].shape == (40, 8)
    np.testing.assert_allclose(np.linalg.norm(original["image"], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(model.encode_text(x["text"], batch_size=7), original["text"],
                               atol=1e-5)

    path = str(tmp_path / f"{kind}.keras")
    model.save(path)
    restored = keras.saving.load_model(path)  # no custom_objects: import keras_cmr suffices
    assert type(restored) is type(model)
    loaded = restored.predict(x, batch_size=40, verbose=0)
    for key in ("image", "text"):
        np.testing.assert_allclose(loaded[key], original[key], atol=1e-6)
    assert int(restored.optimizer.iterations) == int(model.optimizer.iterations) == 8
    # The same next step from the same state gives the same weights.
    model.fit(x, y, batch_size=20, epochs=1, verbose=0, shuffle=False)
    restored.fit(x, y, batch_size=20, epochs=1, verbose=0, shuffle=False)
    assert int(restored.optimizer.iterations) == 10
    np.testing.assert_allclose(restored.predict(x, batch_size=40, verbose=0)["image"],
                               model.predict(x, batch_size=40, verbose=0)["image"], atol=1e-5)
    if kind == "transfer":
        for old, new in zip(weights_of(model.source), weights_of(restored.source)):
            np.testing.assert_allclose(old, new, atol=0)
        assert restored.source.trainable_weights == []


def test_serving_encoder_round_trip(pairs, tmp_path):
    x, y = pairs
    model = make_model("transfer", pairs)
    path = str(tmp_path / "encoder.keras")
    with pytest.raises(ValueError, match="no weights yet"):
        keras_cmr.saving.save_model(model.target, path)
    assert not os.path.exists(path)
    model.predict(x, verbose=0)
    keras_cmr.saving.save_model(model.target, path)
    served = keras_cmr.saving.load_model(path, expected_class=CrossModalEncoder)
    np.testing.assert_allclose(served.encode_image(x["image"]),
                               model.encode_image(x["image"]), atol=1e-6)


def test_config_round_trip_of_every_model(pairs):
    for kind in MODEL_KINDS:
        model = make_model(kind, pairs)
        restored = model.__class__.from_config(model.get_config())
        assert restored.get_config() == model.get_config(), kind


@pytest.mark.parametrize("pair_loss", [
    losses.ContrastiveLoss(margin=0.7),
    losses.TripletLoss(margin=0.3, mining="all"),
    losses.InfoNCELoss(temperature=0.05),
    losses.SupervisedInfoNCELoss(temperature=0.2),
])
def test_every_pair_loss_travels_in_a_keras_file(pair_loss, pairs, tmp_path):
    x, _ = pairs
    model = PairwiseModel(encoder(), pair_loss)
    model.predict(x, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored.pair_loss) is type(pair_loss)
    assert restored.pair_loss.get_config() == pair_loss.get_config()


def test_soft_contrastive_options_travel_in_a_keras_file(pairs, tmp_path):
    x, y = pairs
    loss = losses.SoftContrastiveLoss(sigma="median", delta=1.5, margin="fixed",
                                      label_mix=0.2, intra_modal_weight=0.3)
    model = TransferModel(encoder(), trained_source(pairs), loss)
    model.predict(x, verbose=0)
    model.save(str(tmp_path / "transfer.keras"))
    restored = keras.saving.load_model(str(tmp_path / "transfer.keras"))
    assert restored.transfer_loss.get_config() == loss.get_config()
