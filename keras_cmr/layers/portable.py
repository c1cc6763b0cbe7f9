"""Randomness that gives the same model on every backend for one seed.

Keras draws initial weights and dropout masks from each backend's own generator, so one seed
gives other numbers on TensorFlow, JAX and PyTorch, and a compiled step other dropout masks
than an eager one. These replacements draw from one source instead:

- `PortableGlorotUniform`, `PortableRandomNormal`: numpy's `default_rng(seed)`, converted to
  the backend's tensor; without a seed, the seed is drawn from Python's `random` module when
  the initializer is made (as Keras' own default seeds are), which
  `keras.utils.set_random_seed` seeds.
- `PortableDropout`: a `keras.layers.Dropout` whose mask is `utils.random.counter_bits` of
  its seed generator's state (seed, number of calls so far), so eager and compiled steps of
  every backend drop the same units. Its variables are `Dropout`'s, so models saved with
  `Dropout` load into it unchanged.
"""

import math
import random

import keras
import numpy as np
from keras import ops

from keras_cmr.utils.checks import check_seed
from keras_cmr.utils.random import BITS, counter_bits

_MAX_DEFAULT_SEED = 10**9


def _seed_or_default(seed):
    return random.randint(1, _MAX_DEFAULT_SEED) if seed is None else check_seed(seed)


def _fans(shape):
    """Keras' (fan_in, fan_out) of a kernel shape."""
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


@keras.saving.register_keras_serializable(package="keras_cmr")
class PortableGlorotUniform(keras.initializers.Initializer):
    """Glorot uniform (U(-l, l), l = sqrt(6 / (fan_in + fan_out))) drawn by numpy from `seed`.

    Args:
        seed: non-negative integer; None draws one from Python's `random` at construction.
    """

    def __init__(self, seed=None):
        self.seed = _seed_or_default(seed)

    def draw(self, shape):
        """The values as a float64 numpy array."""
        fan_in, fan_out = _fans(tuple(shape))
        limit = math.sqrt(6.0 / max(1.0, fan_in + fan_out))
        return np.random.default_rng(self.seed).uniform(-limit, limit, size=tuple(shape))

    def __call__(self, shape, dtype=None):
        return ops.convert_to_tensor(self.draw(shape), dtype=dtype or keras.backend.floatx())

    def get_config(self):
        return {"seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_cmr")
class PortableRandomNormal(keras.initializers.Initializer):
    """N(mean, stddev^2) drawn by numpy from `seed`.

    Args:
        mean, stddev: of the normal distribution.
        seed: non-negative integer; None draws one from Python's `random` at construction.
    """

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev = float(mean), float(stddev)
        self.seed = _seed_or_default(seed)

    def draw(self, shape):
        """The values as a float64 numpy array."""
        return np.random.default_rng(self.seed).normal(self.mean, self.stddev, size=tuple(shape))

    def __call__(self, shape, dtype=None):
        return ops.convert_to_tensor(self.draw(shape), dtype=dtype or keras.backend.floatx())

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_cmr")
class PortableDropout(keras.layers.Dropout):
    """Inverted dropout whose mask is a function of (seed, call count, position) alone.

    Each training call keeps a unit when its `counter_bits` are at least `rate * 2**15` and
    scales the kept units by 1 / (1 - rate), as `keras.layers.Dropout` does. Arguments are
    `Dropout`'s; `noise_shape` is not supported.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        if noise_shape is not None:
            raise ValueError("PortableDropout does not support `noise_shape`; got "
                             f"{noise_shape!r}.")
        super().__init__(rate, seed=seed, **kwargs)

    def _next_state(self):
        """The seed generator's state, then advances its call count by one, as
        `SeedGenerator.next` does but from traced values alone (its numpy increment breaks a
        `torch.compile` graph)."""
        variable = self.seed_generator.state
        state = variable.value * 1
        variable.assign(ops.add(state, ops.cast(ops.arange(2), state.dtype)))
        return state

    def call(self, inputs, training=False):
        if not training or self.rate <= 0:
            return inputs
        state = self._next_state()
        bits = counter_bits(state[0], state[1], ops.shape(inputs))
        keep = ops.greater_equal(bits, int(round(self.rate * (1 << BITS))))
        return ops.where(keep, inputs / ops.cast(1.0 - self.rate, inputs.dtype),
                         ops.zeros_like(inputs))
