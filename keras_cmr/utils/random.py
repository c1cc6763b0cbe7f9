"""Random bits that are the same on every backend, eager or compiled.

`counter_bits(seed, counter, shape)` is a counter-based generator (the idea of Salmon et al.'s
Philox, "Parallel random numbers: as easy as 1, 2, 3", SC 2011): the bits are a keyed
permutation of the positions, the key drawn from (seed, counter). It is written with 32-bit
integer `keras.ops` whose every intermediate stays below 2**31, so TensorFlow, JAX and PyTorch
compute the same bits exactly, with or without a compiler (signed overflow, which a 32-bit
multiply-and-wrap hash would rely on, is undefined in the C++ that `torch.compile` emits). The
permutation is a four-round Feistel network on two 15-bit halves whose round function
multiplies by odd constants modulo 2**15 and folds high bits down by shifts; its round keys
come from (seed, counter) through three rounds of the same network (our own construction,
checked by the tests for uniformity and for correlation between neighbouring positions, the
two halves of one block, counters and seeds; it is not cryptographic). Each 30-bit block gives
two positions their 15 bits (its high half the first half of the positions, its low half the
second), so the network runs on half as many blocks as there are positions: without a
compiler every op is a kernel of its own, and on TensorFlow and PyTorch the bits are a
measurable share of a training step at the protocol's towers (benchmarks/README.md).
"""

import math

from keras import ops

BITS = 15
_HALF = 15
_MASK = (1 << _HALF) - 1
# (odd multiplier < 2**16, right shift) of each Feistel round.
_ROUNDS = ((0x9E37, 8), (0xC2B3, 7), (0xA54D, 6), (0x85EB, 8), (0xB7E1, 7), (0xD2B5, 6))
# Round keys of the key schedule, which passes (seed, counter) through the same network.
_SCHEDULE_KEYS = (0x1B87, 0x2F5A, 0x4C2D)


def _round_function(half, multiplier, shift):
    half = ops.bitwise_and(half * multiplier, _MASK)
    half = ops.bitwise_xor(half, ops.right_shift(half, shift))
    half = ops.bitwise_and(half * 0x6A09 + 0x3C6F, _MASK)
    return ops.bitwise_xor(half, ops.right_shift(half, 7))


def _halves(value):
    """The high and low 15 bits of the low 30 bits of `value`, as int32."""
    value = ops.cast(value, "int32")
    return (ops.bitwise_and(ops.right_shift(value, _HALF), _MASK),
            ops.bitwise_and(value, _MASK))


def _feistel(left, right, keys):
    for (multiplier, shift), key in zip(_ROUNDS, keys):
        mixed = _round_function(ops.bitwise_xor(right, key), multiplier, shift)
        left, right = right, ops.bitwise_xor(left, mixed)
    return left, right


def counter_bits(seed, counter, shape):
    """int32 tensor of `shape` holding uniform integers in [0, 2**15).

    A function of (seed, counter, position) alone: the same on every backend, eager or
    compiled. Only the low 30 bits of `seed` and of `counter` count. With n positions, block b
    (b < ceil(n / 2)) is enciphered once; position b gets its high 15 bits and position
    ceil(n / 2) + b its low 15 bits.

    Args:
        seed: integer scalar (a Python int or a tensor).
        counter: integer scalar, e.g. the number of draws made so far.
        shape: the output shape; its leading dimension may be a symbolic tensor.
    """
    # The key schedule enciphers seed and counter side by side (one vector of two blocks).
    block = ops.stack([ops.cast(seed, "int32"), ops.cast(counter, "int32")])
    high, low = _feistel(*_halves(block), _SCHEDULE_KEYS)
    seed_high, counter_high = high[0], high[1]
    seed_low, counter_low = low[0], low[1]
    # Four round keys: the Feistel network on the blocks runs four rounds.
    keys = (ops.bitwise_xor(seed_high, counter_low), ops.bitwise_xor(seed_low, counter_high),
            ops.bitwise_xor(ops.bitwise_xor(seed_high, counter_high), 0x5555),
            ops.bitwise_xor(ops.bitwise_xor(seed_low, counter_low), 0x2AAA))
    size = _size(shape)
    blocks = ops.arange((size + 1) // 2, dtype="int32")
    high, low = _feistel(*_halves(blocks), keys)
    return ops.reshape(ops.concatenate([high, low])[:size], shape)


def _size(shape):
    if all(isinstance(dim, int) for dim in shape):
        return math.prod(shape)
    size = 1
    for dim in shape:
        size = size * dim
    return size
