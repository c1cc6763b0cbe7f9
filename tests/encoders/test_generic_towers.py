"""The towers on small hand-made backbones: eager calls on raw inputs, the generic poolings
(feature-map mean, masked token mean), checked against numpy written here."""

import keras
import numpy as np
import pytest

import keras_hub  # noqa: E402  (a test dependency: CI installs the [hub] extra)

from keras_cmr.encoders import ImageTower, TextTower  # noqa: E402
from keras_cmr.models import CrossModalEncoder  # noqa: E402

VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "cat", "dog", "sits"]


def l2_rows(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def encoder():
    keras.utils.set_random_seed(2)
    images = keras.Input((8, 8, 3), name="images")
    feature_map = keras.layers.Conv2D(4, 4, strides=4, name="conv")(images)  # (2, 2, 4)
    image_backbone = keras.Model(images, feature_map)
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="int32", name="padding_mask")
    states = keras.layers.Embedding(len(VOCABULARY), 4, name="table")(token_ids)
    states = states * keras.ops.expand_dims(keras.ops.cast(padding_mask, "float32"), -1)
    text_backbone = keras.Model({"token_ids": token_ids, "padding_mask": padding_mask},
                                {"sequence_output": states})
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=VOCABULARY, lowercase=True)
    return CrossModalEncoder(
        ImageTower(image_backbone, 3, hidden_dims=()),
        TextTower(text_backbone, 3, tokenizer=tokenizer, sequence_length=6, hidden_dims=()))


def test_raw_images_are_preprocessed_and_mean_pooled(encoder):
    tower = encoder.image_tower
    assert tower.pooling == "mean" and tower.image_converter is None
    images = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    embeddings = encoder.encode_image(images)  # eager, on the raw uint8 array
    conv = tower.backbone.get_layer("conv")
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in conv.weights)
    # The stride-4 4x4 convolution, by loops over the 2x2 output positions, then the mean.
    pixels = images.astype(np.float32)
    features = np.zeros((3, 4), np.float32)
    for row in range(2):
        for col in range(2):
            patch = pixels[:, 4 * row:4 * row + 4, 4 * col:4 * col + 4, :]
            features += np.einsum("bhwc,hwco->bo", patch, kernel) + bias
    features /= 4
    head_kernel, head_bias = (keras.ops.convert_to_numpy(w) for w in tower.head.weights)
    np.testing.assert_allclose(embeddings, l2_rows(features @ head_kernel + head_bias),
                               rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="no image converter"):
        tower.preprocess(np.zeros((1, 9, 8, 3), np.uint8))


def test_raw_captions_are_tokenised_and_mean_pooled_over_real_tokens(encoder):
    tower = encoder.text_tower
    assert tower.pooling == "mean" and tower.pad_token_id == 0
    captions = ["A cat sits", "dog", "a dog sits a cat sits"]  # the last one is truncated
    token_ids = tower.preprocess(captions)
    expected_ids = [[2, 5, 6, 8, 3, 0], [2, 7, 3, 0, 0, 0], [2, 5, 7, 8, 5, 3]]
    np.testing.assert_array_equal(token_ids, expected_ids)
    embeddings = encoder.encode_text(captions)  # eager, on the list of strings
    table = keras.ops.convert_to_numpy(tower.backbone.get_layer("table").weights[0])
    features = np.stack([table[[t for t in row if t != 0]].mean(axis=0) for row in expected_ids])
    head_kernel, head_bias = (keras.ops.convert_to_numpy(w) for w in tower.head.weights)
    np.testing.assert_allclose(embeddings, l2_rows(features @ head_kernel + head_bias),
                               rtol=1e-4, atol=1e-5)
