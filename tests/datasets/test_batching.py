"""PairBatches: shapes, seeded per-epoch shuffling, class-balanced batches, and model.fit."""

import keras
import numpy as np
import pytest

from keras_cmr.datasets import CrossModalSplit, PairBatches


def arrays(n=50, image_dim=6, text_dim=4, num_classes=5):
    # Row i of image holds i, so a batch's rows say which pairs it holds.
    image = np.repeat(np.arange(n, dtype=np.float64)[:, None], image_dim, axis=1)
    text = -np.repeat(np.arange(n, dtype=np.float64)[:, None], text_dim, axis=1)
    return image, text, np.arange(n) % num_classes


def rows_of(batch):
    inputs, _ = batch
    return inputs["image"][:, 0].astype(int)


def epoch_rows(batches):
    return [rows_of(batches[i]) for i in range(len(batches))]


def test_batch_structure_and_shapes():
    image, text, labels = arrays()
    batches = PairBatches(image, text, labels, batch_size=16)
    assert len(batches) == 3  # 50 // 16, the remainder of 2 dropped
    for i in range(len(batches)):
        inputs, y = batches[i]
        assert set(inputs) == {"image", "text"}
        assert inputs["image"].shape == (16, 6) and inputs["text"].shape == (16, 4)
        assert inputs["image"].dtype == np.float32 and inputs["text"].dtype == np.float32
        rows = rows_of((inputs, y))
        np.testing.assert_array_equal(y, labels[rows])  # pairs stay aligned
        np.testing.assert_array_equal(inputs["text"][:, 0], -rows)
    with pytest.raises(IndexError):
        batches[3]


def test_without_drop_remainder_the_last_batch_is_smaller_and_every_pair_is_served():
    image, text, labels = arrays()
    batches = PairBatches(image, text, labels, batch_size=16, drop_remainder=False)
    assert len(batches) == 4
    sizes = [len(rows) for rows in epoch_rows(batches)]
    assert sizes == [16, 16, 16, 2]
    np.testing.assert_array_equal(np.sort(np.concatenate(epoch_rows(batches))), np.arange(50))


def test_no_shuffle_keeps_order():
    batches = PairBatches(*arrays(n=10), batch_size=4, shuffle=False)
    np.testing.assert_array_equal(np.concatenate(epoch_rows(batches)), np.arange(8))


def test_seeded_deterministic_and_different_each_epoch():
    image, text, labels = arrays()
    a = PairBatches(image, text, labels, batch_size=10, seed=3)
    b = PairBatches(image, text, labels, batch_size=10, seed=3)
    first = epoch_rows(a)
    for x, y in zip(first, epoch_rows(b)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first[0], np.arange(10))  # it is shuffled
    assert not np.array_equal(
        np.concatenate(first), np.concatenate(epoch_rows(PairBatches(image, text, labels,
                                                                     batch_size=10, seed=4)))
    )
    a.on_epoch_end()
    second = epoch_rows(a)
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))
    np.testing.assert_array_equal(np.sort(np.concatenate(second)), np.arange(50))
    b.on_epoch_end()  # the same epoch of another instance gives the same order
    np.testing.assert_array_equal(np.concatenate(second), np.concatenate(epoch_rows(b)))


def test_class_balanced_batches_hold_p_classes_times_k_pairs():
    # Class sizes 12, 9, 7, 5, 2: class 4 has fewer than K=3 pairs.
    labels = np.repeat(np.arange(5), [12, 9, 7, 5, 2])
    n = len(labels)
    image = np.repeat(np.arange(n, dtype=float)[:, None], 3, axis=1)
    batches = PairBatches(image, image[:, :2], labels, classes_per_batch=4, pairs_per_class=3,
                          seed=1)
    assert len(batches) == n // 12
    seen_small_class = False
    for epoch in range(3):
        for i in range(len(batches)):
            inputs, y = batches[i]
            assert inputs["image"].shape == (12, 3)
            classes, counts = np.unique(y, return_counts=True)
            assert len(classes) == 4 and np.all(counts == 3)
            rows = rows_of((inputs, y))
            np.testing.assert_array_equal(labels[rows], y)
            for c in classes:
                if c != 4:  # a class with >= K pairs never repeats a pair within a batch
                    assert len(np.unique(rows[y == c])) == 3
                else:
                    seen_small_class = True
                    assert set(rows[y == c]) == {33, 34}  # both of its pairs, one repeated
        batches.on_epoch_end()
    assert seen_small_class


def test_class_balanced_with_few_pairs_still_has_one_batch():
    labels = np.array([0, 0, 1, 1, 2])
    batches = PairBatches(np.ones((5, 2)), np.ones((5, 2)), labels, classes_per_batch=3,
                          pairs_per_class=4)
    assert len(batches) == 1 and len(batches[0][1]) == 12


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, r"batch_size must be an integer >= 1, got 0"),
        ({"batch_size": 2.5}, r"batch_size must be an integer >= 1"),
        ({"batch_size": 51}, r"batch_size=51 exceeds the 50 pairs"),
        ({"classes_per_batch": 2}, r"need both classes_per_batch \(P\) and pairs_per_class"),
        ({"classes_per_batch": 6, "pairs_per_class": 2}, r"only 5 classes are present"),
        ({"classes_per_batch": 2, "pairs_per_class": 0}, r"pairs_per_class must be an integer"),
        ({"seed": -1}, r"seed must be a non-negative integer"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PairBatches(*arrays(), **kwargs)


def test_invalid_arrays():
    image, text, labels = arrays()
    with pytest.raises(ValueError, match=r"50 image rows, 49 text rows and 50 labels"):
        PairBatches(image, text[:-1], labels)
    with pytest.raises(ValueError, match=r"image must be a 2-D"):
        PairBatches(image[:, 0], text, labels)
    assert len(PairBatches(image, text, labels, batch_size=51, drop_remainder=False)) == 1


def test_model_fit_on_pair_batches(rng):
    split = CrossModalSplit(rng.normal(size=(64, 6)), rng.normal(size=(64, 4)),
                            rng.integers(0, 3, size=64), name="train")
    batches = PairBatches.from_split(split, batch_size=16, seed=0)
    image = keras.Input(shape=(6,), name="image")
    text = keras.Input(shape=(4,), name="text")
    joined = keras.layers.Concatenate()(
        [keras.layers.Dense(4)(image), keras.layers.Dense(4)(text)]
    )
    model = keras.Model({"image": image, "text": text}, keras.layers.Dense(3)(joined))
    model.compile(optimizer="sgd",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(batches, epochs=1, verbose=0)
    assert np.isfinite(float(history.history["loss"][0]))
    # fit called on_epoch_end (Keras also calls it once when it resets its iterator before the
    # first epoch), so the next epoch is served in a new order.
    assert batches.epoch >= 1
    fresh = PairBatches.from_split(split, batch_size=16, seed=0)
    assert not np.array_equal(batches[0][0]["image"], fresh[0][0]["image"])
