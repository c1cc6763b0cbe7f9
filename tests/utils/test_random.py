"""`counter_bits`: exact against a numpy reference, uniform, and without neighbour correlation."""

import numpy as np
import pytest
from keras import ops

from keras_cmr.utils.random import counter_bits

MASK = (1 << 15) - 1
ROUNDS = ((0x9E37, 8), (0xC2B3, 7), (0xA54D, 6), (0x85EB, 8), (0xB7E1, 7), (0xD2B5, 6))
SCHEDULE = (0x1B87, 0x2F5A, 0x4C2D, 0x5E91, 0x7A13, 0x0D6B)


def reference_bits(seed, counter, shape):
    """The documented construction in int64 numpy: a four-round Feistel network on two 15-bit
    halves, keyed by six rounds of the same network applied to (seed, counter)."""
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
    position = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    high, low = feistel(position >> 15, position & MASK, keys)
    return (high << 15) + low


@pytest.mark.parametrize("seed, counter, shape", [
    (0, 0, (7,)), (123456789, 7, (64, 40)), (2**30 - 1, 2**30 - 1, (3, 5, 2)),
    (813847340, 12345, (100, 256)),
])
def test_bits_equal_the_numpy_reference_exactly(seed, counter, shape):
    bits = ops.convert_to_numpy(counter_bits(seed, counter, shape))
    assert bits.dtype == np.int32 and bits.shape == shape
    np.testing.assert_array_equal(bits, reference_bits(seed, counter, shape))
    assert bits.min() >= 0 and bits.max() < 2**30


def test_tensor_arguments_give_the_bits_of_python_ints():
    state = ops.convert_to_tensor(np.array([4242, 17], dtype="int64"))
    np.testing.assert_array_equal(ops.convert_to_numpy(counter_bits(state[0], state[1], (9, 4))),
                                  reference_bits(4242, 17, (9, 4)))


def test_bits_are_uniform_and_neighbours_uncorrelated():
    steps = 200
    draws = np.stack([reference_bits(5, step, (2048,)) for step in range(steps)]) / 2.0**30
    np.testing.assert_array_equal(
        ops.convert_to_numpy(counter_bits(5, steps - 1, (2048,))) / 2.0**30, draws[-1])
    # 5 standard errors for every statistic: a failure is a real defect, not bad luck.
    size = draws.size
    assert abs(draws.mean() - 0.5) < 5 * np.sqrt(1 / 12 / size)
    counts = np.bincount((draws.ravel() * 256).astype(int), minlength=256)
    chi2 = ((counts - size / 256) ** 2 / (size / 256)).sum()
    assert abs(chi2 - 255) < 5 * np.sqrt(2 * 255)
    bound = 5 / np.sqrt(size)
    for first, second in ((draws[:, :-1], draws[:, 1:]), (draws[:, :-64], draws[:, 64:]),
                          (draws[:-1], draws[1:])):  # neighbouring positions, then counters
        assert abs(np.corrcoef(first.ravel(), second.ravel())[0, 1]) < bound
    seeds = np.stack([reference_bits(seed, 0, (2048,)) for seed in range(100)]) / 2.0**30
    assert abs(np.corrcoef(seeds[:-1].ravel(), seeds[1:].ravel())[0, 1]) < 5 / np.sqrt(
        seeds[1:].size)
