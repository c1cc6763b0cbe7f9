"""`counter_bits`: exact against a numpy reference, uniform, and without neighbour correlation."""

import numpy as np
import pytest
from keras import ops

from keras_cmr.utils.random import counter_bits

MASK = (1 << 15) - 1
ROUNDS = ((0x9E37, 8), (0xC2B3, 7), (0xA54D, 6), (0x85EB, 8), (0xB7E1, 7), (0xD2B5, 6))
SCHEDULE = (0x1B87, 0x2F5A, 0x4C2D)


def reference_bits(seed, counter, shape):
    """The documented construction in int64 numpy: a four-round Feistel network on two 15-bit
    halves of each block b < ceil(n / 2), keyed by three rounds of the same network applied to
    (seed, counter); position b gets the block's high half, position ceil(n / 2) + b its low
    half."""
    def round_function(half, multiplier, shift):
        half = (half * multiplier) & MASK
        half ^= half >> shift
        half = (half * 0x6A09 + 0x3C6F) & MASK
        return half ^ (half >> 7)

    def feistel(left, right, keys):
        for (multiplier, shift), key in zip(ROUNDS, keys):
            left, right = right, left ^ round_function(right ^ key, multiplier, shift)
        return left, right

    block = np.array([seed, counter], dtype=np.int64) & ((1 << 30) - 1)
    high, low = feistel(block >> 15, block & MASK, SCHEDULE)
    (seed_high, counter_high), (seed_low, counter_low) = high, low
    keys = (seed_high ^ counter_low, seed_low ^ counter_high,
            seed_high ^ counter_high ^ 0x5555, seed_low ^ counter_low ^ 0x2AAA)
    size = int(np.prod(shape))
    blocks = np.arange((size + 1) // 2, dtype=np.int64)
    high, low = feistel(blocks >> 15, blocks & MASK, keys)
    return np.concatenate([high, low])[:size].reshape(shape)


@pytest.mark.parametrize("seed, counter, shape", [
    (0, 0, (7,)), (123456789, 7, (64, 40)), (2**30 - 1, 2**30 - 1, (3, 5, 3)),
    (813847340, 12345, (100, 256)),
])
def test_bits_equal_the_numpy_reference_exactly(seed, counter, shape):
    bits = ops.convert_to_numpy(counter_bits(seed, counter, shape))
    assert bits.dtype == np.int32 and bits.shape == shape
    np.testing.assert_array_equal(bits, reference_bits(seed, counter, shape))
    assert bits.min() >= 0 and bits.max() < 2**15


def test_tensor_arguments_give_the_bits_of_python_ints():
    state = ops.convert_to_tensor(np.array([4242, 17], dtype="int64"))
    np.testing.assert_array_equal(ops.convert_to_numpy(counter_bits(state[0], state[1], (9, 4))),
                                  reference_bits(4242, 17, (9, 4)))


def test_bits_are_uniform_and_neighbours_uncorrelated():
    steps = 200
    draws = np.stack([reference_bits(5, step, (2048,)) for step in range(steps)]) / 2.0**15
    np.testing.assert_array_equal(
        ops.convert_to_numpy(counter_bits(5, steps - 1, (2048,))) / 2.0**15, draws[-1])
    # 5 standard errors for every statistic: a failure is a real defect, not bad luck.
    size = draws.size
    assert abs(draws.mean() - 0.5) < 5 * np.sqrt(1 / 12 / size)
    counts = np.bincount((draws.ravel() * 256).astype(int), minlength=256)
    chi2 = ((counts - size / 256) ** 2 / (size / 256)).sum()
    assert abs(chi2 - 255) < 5 * np.sqrt(2 * 255)
    bound = 5 / np.sqrt(size)
    # Neighbouring positions, positions 64 apart, the two halves of one block, counters.
    for first, second in ((draws[:, :-1], draws[:, 1:]), (draws[:, :-64], draws[:, 64:]),
                          (draws[:, :1024], draws[:, 1024:]), (draws[:-1], draws[1:])):
        assert abs(np.corrcoef(first.ravel(), second.ravel())[0, 1]) < bound
    seeds = np.stack([reference_bits(seed, 0, (2048,)) for seed in range(100)]) / 2.0**15
    assert abs(np.corrcoef(seeds[:-1].ravel(), seeds[1:].ravel())[0, 1]) < 5 / np.sqrt(
        seeds[1:].size)
