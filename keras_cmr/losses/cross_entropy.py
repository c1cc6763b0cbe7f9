"""Cross-entropy against soft targets, the common term of the class-wise and InfoNCE losses."""

from keras import ops


def soft_cross_entropy(targets, logits, axis=-1):
    """-sum_j targets_j * log_softmax(logits)_j along `axis` (targets need not sum to 1)."""
    log_probabilities = logits - ops.logsumexp(logits, axis=axis, keepdims=True)
    return -ops.sum(targets * log_probabilities, axis=axis)
