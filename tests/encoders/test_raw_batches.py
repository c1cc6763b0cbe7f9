"""RawPairBatches: raw images and captions through the towers' preprocessing, per batch."""

import numpy as np
import pytest

from keras_cmr.encoders import RawPairBatches


class StubImageTower:
    """Scales to [0, 1]; `make_pairs` writes each row's index in its first pixel."""

    def preprocess(self, images):
        return images.astype(np.float32) / 255.0


class StubTextTower:
    def __init__(self):
        self.calls = 0

    def preprocess(self, captions):
        self.calls += 1
        return np.array([[len(caption), 0] for caption in captions], dtype=np.int32)


def make_pairs(count):
    images = np.zeros((count, 3, 3, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(count)
    captions = ["x" * (index + 1) for index in range(count)]
    return images, captions, np.arange(count) % 2


def test_batches_pair_rows_and_tokenise_once():
    images, captions, labels = make_pairs(10)
    text_tower = StubTextTower()
    batches = RawPairBatches(images, captions, labels, StubImageTower(), text_tower,
                             batch_size=4, seed=3)
    assert len(batches) == 2 and text_tower.calls == 1
    seen = []
    for index in range(len(batches)):
        x, y = batches[index]
        assert x["image"].dtype == np.float32 and x["image"].shape == (4, 3, 3, 3)
        assert x["text"].shape == (4, 2)
        rows = np.rint(x["image"][:, 0, 0, 0] * 255).astype(int)
        np.testing.assert_array_equal(x["text"][:, 0], rows + 1)  # caption i has i + 1 chars
        np.testing.assert_array_equal(y, labels[rows])
        seen.extend(rows)
    assert len(set(seen)) == 8 and text_tower.calls == 1
    first = batches[0][0]["text"].copy()
    batches.on_epoch_end()
    assert not np.array_equal(batches[0][0]["text"], first)  # a new order each epoch
    again = RawPairBatches(images, captions, labels, StubImageTower(), StubTextTower(),
                           batch_size=4, seed=3)
    np.testing.assert_array_equal(again[0][0]["text"], first)  # the order follows the seed


def test_unshuffled_batches_keep_the_remainder_when_asked():
    images, captions, labels = make_pairs(10)
    batches = RawPairBatches(images, captions, labels, StubImageTower(), StubTextTower(),
                             batch_size=4, shuffle=False, drop_remainder=False)
    assert len(batches) == 3
    np.testing.assert_array_equal(batches[2][1], labels[8:])
    with pytest.raises(IndexError):
        batches[3]


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 1}, "batch_size"),
    ({"batch_size": 11}, "exceeds"),
    ({"batch_size": 3, "drop_remainder": False}, "single pair"),
    ({"seed": -1}, "seed"),
])
def test_bad_batching_is_refused(kwargs, message):
    images, captions, labels = make_pairs(10)
    with pytest.raises(ValueError, match=message):
        RawPairBatches(images, captions, labels, StubImageTower(), StubTextTower(), **kwargs)


def test_counts_must_agree():
    images, captions, labels = make_pairs(10)
    with pytest.raises(ValueError, match="9 captions"):
        RawPairBatches(images, captions[:9], labels, StubImageTower(), StubTextTower())
