"""Other keras-hub backbones as towers: ViT (no dict input) and BERT (padding mask, segments,
pooled output, WordPiece assets), each from its own preset folder."""

import os

import keras
import numpy as np
import pytest

import keras_hub  # noqa: E402  (a test dependency: CI installs the [hub] extra)

from keras_cmr.encoders import ImageTower, TextTower, clip_towers  # noqa: E402
from keras_cmr.models import CrossModalEncoder  # noqa: E402

WORDS = ["a", "cat", "dog", "sits", "on", "the", "mat"]
SEQUENCE_LENGTH = 8


@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    keras.utils.set_random_seed(1)
    vit_dir = str(tmp_path_factory.mktemp("vit_preset"))
    keras_hub.models.ViTBackbone(image_shape=(16, 16, 3), patch_size=8, num_layers=1,
                                 num_heads=2, hidden_dim=8, mlp_dim=16).save_to_preset(vit_dir)
    keras_hub.layers.ViTImageConverter(image_size=(16, 16), scale=1 / 127.5,
                                       offset=-1.0).save_to_preset(vit_dir)
    bert_dir = str(tmp_path_factory.mktemp("bert_preset"))
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    keras_hub.models.BertBackbone(vocabulary_size=len(vocabulary), num_layers=1, num_heads=2,
                                  hidden_dim=8, intermediate_dim=16,
                                  max_sequence_length=SEQUENCE_LENGTH).save_to_preset(bert_dir)
    keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True).save_to_preset(bert_dir)
    return vit_dir, bert_dir


def test_vit_and_bert_towers_embed_and_round_trip_through_a_keras_file(presets, tmp_path):
    vit_dir, bert_dir = presets
    encoder = CrossModalEncoder(
        ImageTower.from_preset(vit_dir, embedding_dim=4, hidden_dims=()),
        TextTower.from_preset(bert_dir, embedding_dim=4, hidden_dims=()))
    encoder.build({"image": (None, 16, 16, 3), "text": (None, SEQUENCE_LENGTH)})
    image_tower, text_tower = encoder.image_tower, encoder.text_tower
    assert image_tower.pooling == "cls" and text_tower.pooling == "pooled"
    assert image_tower.image_shape == (16, 16, 3) and text_tower.sequence_length == SEQUENCE_LENGTH
    token_ids = text_tower.preprocess(["A cat sits on the mat", "the zebra"])
    tokenizer = text_tower.tokenizer
    expected_first = [tokenizer.cls_token_id, *tokenizer(["a cat sits on the mat"])[0],
                      tokenizer.sep_token_id]
    np.testing.assert_array_equal(token_ids[0, :len(expected_first)], expected_first)
    np.testing.assert_array_equal(token_ids[0, len(expected_first):], tokenizer.pad_token_id)
    assert tokenizer.token_to_id("[UNK]") in token_ids[1]  # "zebra" is not in the vocabulary

    # Compiled predicts (eager JAX compiles each op on first use, which is slow): the
    # embeddings of preprocessed inputs, and the text tower on the ids alone against the ids
    # with the padding mask a keras-hub preprocessor gives, which the tower must derive.
    images = image_tower.preprocess(
        np.random.default_rng(0).integers(0, 256, (2, 24, 20, 3), dtype=np.uint8))
    ids = keras.Input((SEQUENCE_LENGTH,), dtype="int32")
    mask = keras.Input((SEQUENCE_LENGTH,), dtype="bool")
    pixels = keras.Input(image_tower.image_shape)
    probe = keras.Model([pixels, ids, mask], [
        image_tower(pixels), text_tower(ids),
        text_tower({"token_ids": ids, "padding_mask": mask})])
    image_embeddings, text_embeddings, with_mask = probe.predict(
        [images, token_ids, token_ids != tokenizer.pad_token_id], verbose=0)
    for embeddings in (image_embeddings, text_embeddings):
        assert embeddings.shape == (2, 4)
        np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(with_mask, text_embeddings, atol=1e-6)

    path = os.path.join(str(tmp_path), "encoder.keras")
    encoder.save(path)
    loaded = keras.saving.load_model(path)
    # The WordPiece vocabulary came back from the file's assets.
    np.testing.assert_array_equal(
        loaded.text_tower.preprocess(["A cat sits on the mat", "the zebra"]), token_ids)
    got = loaded.predict({"image": images, "text": token_ids}, verbose=0)
    np.testing.assert_allclose(got["image"], image_embeddings, atol=1e-6)
    np.testing.assert_allclose(got["text"], text_embeddings, atol=1e-6)


def test_single_backbone_presets_are_not_clip(presets):
    with pytest.raises(ValueError, match="not a two-tower"):
        clip_towers(presets[1])
    with pytest.raises(ValueError, match="'images'"):
        ImageTower.from_preset(presets[1])
