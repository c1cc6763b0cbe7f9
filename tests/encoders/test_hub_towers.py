"""keras-hub CLIP encoders as towers: presets, training through fit, .keras round trips, errors.

A tiny randomly initialised CLIP (16x16 images, 8-token captions, width 8, one layer per
encoder) is saved as a keras-hub preset folder once per module, then loaded back through the
encoders API; a SourceModel and a TransferModel train two steps on generated pairs.
"""

import os

import keras
import numpy as np
import pytest


import keras_cmr  # noqa: E402
from keras_cmr.encoders import ImageTower, RawPairBatches, TextTower, clip_towers  # noqa: E402
from keras_cmr.encoders.tiny import DEMO_WORDS  # noqa: E402
from keras_cmr.models import CrossModalEncoder, SourceModel, TransferModel  # noqa: E402

# Those of the tiny CLIP preset that tests/encoders/conftest.py builds.
WORDS = DEMO_WORDS
IMAGE_SIZE = 16
SEQUENCE_LENGTH = 8
NUM_PAIRS = 8
NUM_CLASSES = 2


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (NUM_PAIRS, 20, 24, 3), dtype=np.uint8)
    captions = [" ".join(rng.choice(WORDS, size=rng.integers(2, 9))) for _ in range(NUM_PAIRS)]
    labels = np.arange(NUM_PAIRS) % NUM_CLASSES
    return images, captions, labels


def weights_of(layer):
    return [np.array(w) for w in layer.get_weights()]


def changed(before, after):
    return any(not np.array_equal(b, a) for b, a in zip(before, after, strict=True))


def build_for_fit(model):
    """Builds the model and its optimizer, so the weights can be read before `fit`.

    Keras' TensorFlow trainer otherwise creates the optimizer's variables while tracing the
    first train step, which makes TensorFlow trace the step twice.
    """
    model.build({"image": (None, IMAGE_SIZE, IMAGE_SIZE, 3), "text": (None, SEQUENCE_LENGTH)})
    model.optimizer.build(model.trainable_variables)


@pytest.fixture(scope="module")
def trained_source(clip_preset, pairs, tmp_path_factory):
    """A SourceModel on a frozen image backbone and a fine-tuned text backbone, after fit."""
    images, captions, labels = pairs
    image_tower = ImageTower.from_preset(clip_preset, embedding_dim=4, hidden_dims=(8,),
                                         freeze_backbone=True)
    text_tower = TextTower.from_preset(clip_preset, embedding_dim=4, hidden_dims=(8,),
                                       freeze_backbone=False)
    encoder = CrossModalEncoder(image_tower, text_tower)
    source = SourceModel(encoder, NUM_CLASSES)
    source.compile(optimizer=keras.optimizers.Adam(1e-2))
    parts = {"image_backbone": image_tower.backbone, "image_head": image_tower.head,
             "text_backbone": text_tower.backbone, "text_head": text_tower.head}
    build_for_fit(source)
    before = {key: weights_of(layer) for key, layer in parts.items()}
    batches = RawPairBatches(images, captions, labels, image_tower, text_tower, batch_size=4)
    history = source.fit(batches, epochs=1, verbose=0)
    after = {key: weights_of(layer) for key, layer in parts.items()}
    path = os.path.join(str(tmp_path_factory.mktemp("saved")), "source.keras")
    keras_cmr.saving.save_model(source, path)
    x = {"image": image_tower.preprocess(images), "text": text_tower.preprocess(captions)}
    return {"model": source, "history": history.history, "before": before, "after": after,
            "path": path, "x": x, "embeddings": source.predict(x, verbose=0)}


def test_preset_towers_hold_the_presets_parts_and_embed_on_the_unit_sphere(clip_parts,
                                                                           clip_preset, pairs):
    images, captions, _ = pairs
    backbone, tokenizer, converter = clip_parts
    image_tower, text_tower = clip_towers(clip_preset, embedding_dim=4, hidden_dims=(8,))
    assert image_tower.freeze_backbone and text_tower.freeze_backbone
    assert not image_tower.backbone.trainable_weights
    # The preset's weights and preprocessing, not a fresh draw.
    for loaded, saved in ((image_tower.backbone, backbone.vision_encoder),
                          (text_tower.backbone, backbone.text_encoder)):
        assert not changed(weights_of(saved), weights_of(loaded))
    np.testing.assert_allclose(image_tower.preprocess(images),
                               keras.ops.convert_to_numpy(converter(images)))
    token_ids = text_tower.preprocess(captions)
    assert token_ids.shape == (NUM_PAIRS, SEQUENCE_LENGTH) and token_ids.dtype == np.int32
    for row, caption in zip(token_ids, captions):
        body = list(tokenizer([caption])[0])[:SEQUENCE_LENGTH - 2]
        expected = [tokenizer.start_token_id, *body, tokenizer.end_token_id]
        padded = expected + [tokenizer.pad_token_id] * (SEQUENCE_LENGTH - len(expected))
        np.testing.assert_array_equal(row, padded)

    # A compiled predict of a built model: eager JAX compiles each op on first use, which is
    # slow; the eager path on raw inputs is tested on small backbones (test_generic_towers).
    encoder = CrossModalEncoder(image_tower, text_tower)
    encoder.build({"image": (None, IMAGE_SIZE, IMAGE_SIZE, 3), "text": (None, SEQUENCE_LENGTH)})
    embeddings = encoder.predict({"image": image_tower.preprocess(images), "text": token_ids},
                                 verbose=0)
    for modality in ("image", "text"):
        assert embeddings[modality].shape == (NUM_PAIRS, 4)
        np.testing.assert_allclose(np.linalg.norm(embeddings[modality], axis=1), 1.0,
                                   atol=1e-5)
    assert np.ptp(embeddings["text"], axis=0).max() > 1e-4  # captions differ, so do embeddings


def test_source_fit_trains_heads_and_only_the_unfrozen_backbone(trained_source):
    before, after = trained_source["before"], trained_source["after"]
    assert np.isfinite(trained_source["history"]["loss"]).all()
    assert not changed(before["image_backbone"], after["image_backbone"])  # frozen
    assert changed(before["text_backbone"], after["text_backbone"])  # fine-tuned
    assert changed(before["image_head"], after["image_head"])
    assert changed(before["text_head"], after["text_head"])


def test_transfer_fit_trains_the_target_head_and_leaves_the_source(trained_source,
                                                                   clip_preset, pairs):
    images, captions, labels = pairs
    source = trained_source["model"]
    # Both target backbones frozen: the source fit covers fine-tuning, and a head-only
    # backward pass keeps this test fast.
    target = CrossModalEncoder(*clip_towers(clip_preset, embedding_dim=4, hidden_dims=(8,)))
    transfer = TransferModel(target, source)
    transfer.compile(optimizer=keras.optimizers.Adam(1e-2))
    batches = RawPairBatches(images, captions, labels, target.image_tower, target.text_tower,
                             batch_size=4, seed=1)
    build_for_fit(transfer)
    source_before = weights_of(source.encoder)
    towers = (target.image_tower, target.text_tower)
    backbones_before = [weights_of(tower.backbone) for tower in towers]
    heads_before = [weights_of(tower.head) for tower in towers]
    history = transfer.fit(batches, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert not changed(source_before, weights_of(source.encoder))
    for tower, backbone_before, head_before in zip(towers, backbones_before, heads_before):
        assert not changed(backbone_before, weights_of(tower.backbone))
        assert changed(head_before, weights_of(tower.head))


def test_keras_file_round_trip_keeps_backbones_preprocessing_and_freezing(trained_source,
                                                                          pairs):
    images, captions, _ = pairs
    loaded = keras.saving.load_model(trained_source["path"])
    assert isinstance(loaded, SourceModel)
    image_tower, text_tower = loaded.encoder.image_tower, loaded.encoder.text_tower
    assert isinstance(image_tower, ImageTower) and isinstance(text_tower, TextTower)
    assert image_tower.freeze_backbone and not text_tower.freeze_backbone
    x = trained_source["x"]
    # The tokenizer's vocabulary came back from the file's assets, the converter's config too.
    np.testing.assert_array_equal(text_tower.preprocess(captions), x["text"])
    np.testing.assert_array_equal(image_tower.preprocess(images), x["image"])
    embeddings = loaded.predict(x, verbose=0)
    for modality in ("image", "text"):
        np.testing.assert_allclose(embeddings[modality], trained_source["embeddings"][modality],
                                   atol=1e-6)


def test_bad_preset_paths_are_named(tmp_path):
    missing = str(tmp_path / "no_such_preset")
    with pytest.raises(FileNotFoundError, match="no_such_preset"):
        ImageTower.from_preset(missing)
    with pytest.raises(FileNotFoundError, match="config.json"):
        TextTower.from_preset(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no_such_preset"):
        clip_towers(missing)


def test_wrong_images_and_captions_get_clear_errors(clip_preset):
    image_tower, text_tower = clip_towers(clip_preset, embedding_dim=4, hidden_dims=(8,))
    with pytest.raises(ValueError, match=r"\(batch, 16, 16, 3\)"):
        image_tower(np.zeros((2, 8, 8, 3), "float32"))
    with pytest.raises(ValueError, match="batch"):
        image_tower.preprocess(np.zeros((16, 16, 3), "uint8"))
    with pytest.raises(TypeError, match="single string"):
        text_tower.preprocess("a cat")
    with pytest.raises(TypeError, match="caption 1"):
        text_tower.preprocess(["a cat", 3])
    with pytest.raises(TypeError, match="single string"):
        CrossModalEncoder(image_tower, text_tower).encode_text("a cat sits")
    with pytest.raises(ValueError, match="at most 8 tokens"):
        text_tower(np.zeros((2, 9), "int32"))
    with pytest.raises(ValueError, match="max_sequence_length"):
        TextTower(text_tower.backbone, 4, sequence_length=9)
