"""Shared inputs of the soft contrastive references."""

import pytest

N, E, F = 6, 4, 4  # pairs, target embedding width, source embedding width


@pytest.fixture
def inputs(rng):
    """(u, v, s, t): target image and text embeddings (N x E), source ones (N x F)."""
    u, v = (rng.normal(size=(N, E)).astype("float32") for _ in range(2))
    s, t = (rng.normal(size=(N, F)).astype("float32") for _ in range(2))
    return u, v, s, t
