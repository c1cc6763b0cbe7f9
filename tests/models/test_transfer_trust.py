"""TransferModel with trust="agreement": the label-trust input, its checks, and its fit."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_cmr import losses
from keras_cmr.losses.label_trust import label_agreement
from keras_cmr.models import CrossModalEncoder, SourceModel, TransferModel

NUM_CLASSES = 4  # the classes of the `pairs` fixture (tests/conftest.py)


def encoder(name=None, dropout=0.0):
    return CrossModalEncoder.projection(8, hidden_dims=(16,), dropout=dropout, name=name)


def selective(source=None, **options):
    return TransferModel(encoder(), source, losses.SoftContrastiveLoss(
        trust="agreement", trust_temperature=0.2, **options))


@pytest.fixture
def source(pairs):
    x, y = pairs
    keras.utils.set_random_seed(0)
    model = SourceModel(encoder("source_encoder"), NUM_CLASSES)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, y, batch_size=20, epochs=1, verbose=0)
    return model


def test_label_trust_is_the_agreement_of_the_source_embeddings(pairs, source):
    x, y = pairs
    s, t = source.encode_image(x["image"]), source.encode_text(x["text"])
    expected = ops.convert_to_numpy(label_agreement(s, t, y, temperature=0.2))
    # From the source model, and from precomputed source embeddings alike.
    from_model = selective(source).training_inputs(x, y)
    from_inputs = selective().training_inputs({**x, "source_image": s, "source_text": t}, y)
    for inputs in (from_model, from_inputs):
        assert inputs["label_trust"].dtype == np.float32
        np.testing.assert_allclose(inputs["label_trust"], expected, rtol=1e-5, atol=1e-7)
    assert set(from_model) == {"image", "text", "label_trust"}
    # The global trust adds nothing, and a given trust is kept.
    assert TransferModel(encoder(), source).training_inputs(x, y) is x
    given = {**x, "label_trust": np.ones(len(y), "float32")}
    assert selective(source).training_inputs(given, y) is given


def test_full_agreement_trains_as_the_global_trust(pairs, source):
    x, y = pairs
    models = [TransferModel(encoder(), source), selective(source)]
    for model in models:
        model.encoder({"image": x["image"][:2], "text": x["text"][:2]})
    models[1].encoder.set_weights(models[0].encoder.get_weights())
    inputs = [x, {**x, "label_trust": np.ones(len(y), "float32")}]
    for model, given in zip(models, inputs):
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.fit(given, y, batch_size=20, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(models[0].encoder.get_weights(), models[1].encoder.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_label_trust_changes_the_training(pairs, source):
    x, y = pairs
    noisy = y.copy()
    noisy[::10] = (noisy[::10] + 1) % NUM_CLASSES  # one changed label per class
    trusted = selective(source)
    inputs = trusted.training_inputs(x, noisy)
    assert inputs["label_trust"].min() < 1.0
    trusted.compile(optimizer=keras.optimizers.SGD(0.1))
    history = trusted.fit(inputs, noisy, batch_size=20, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def test_the_label_trust_input_is_checked(pairs, source):
    x, y = pairs
    model = selective(source)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match='trust="agreement", so x needs "label_trust"'):
        model.fit(x, y, batch_size=20, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"label_trust must be a 1-D array with one value per "
                                         r"pair \(40\); received shape \(40, 1\)"):
        model.fit({**x, "label_trust": np.ones((40, 1))}, y, batch_size=20, verbose=0)
    bad = np.ones(40, "float32")
    bad[5] = 1.5
    with pytest.raises(ValueError, match=r"label_trust row 5 is .*1\.5.*, outside \[0, 1\]"):
        model.fit({**x, "label_trust": bad}, y, batch_size=20, verbose=0)
    bad[5] = np.nan
    with pytest.raises(ValueError, match="label_trust row 5"):
        model.fit({**x, "label_trust": bad}, y, batch_size=20, verbose=0)
    plain = TransferModel(encoder(), source)
    plain.compile(optimizer="adam")
    with pytest.raises(ValueError, match='does not use it \\(trust="global"\\)'):
        plain.fit({**x, "label_trust": np.ones(40, "float32")}, y, batch_size=20, verbose=0)
    with pytest.raises(ValueError, match="no source model"):
        selective().training_inputs(x, y)
