"""The two forms of the soft contrastive loss, given their targets (see `soft_targets`).

`soft_contrastive_margin` and `soft_contrastive_infonce` check their inputs and options once
per call; `margin_kernel` and `infonce_kernel` are their math, for callers whose inputs are
already checked float32 tensors (`soft_contrastive`).
"""

import numbers

from keras import ops

from keras_cmr.losses.cross_entropy import soft_cross_entropy
from keras_cmr.losses.distances import EPSILON, cosine_matrix, distances, to_float32
from keras_cmr.losses.inputs import check_embeddings
from keras_cmr.options import SoftContrastiveOptions


def _as_float32(value):
    return value if isinstance(value, numbers.Real) else to_float32(value)


def margin_kernel(a, b, weights, margins, relative_distance):
    """`soft_contrastive_margin` of float32 embeddings a (n, E) and b (m, E) or None."""
    d = distances(a, b)
    if relative_distance:
        d = d / ops.maximum(ops.mean(d, axis=1, keepdims=True), EPSILON)
    w = to_float32(weights)
    return ops.sum(w * ops.square(d) + (1.0 - w) * ops.square(ops.relu(_as_float32(margins) - d)),
                   axis=1)


def infonce_kernel(a, b, targets, margins, temperature):
    """`soft_contrastive_infonce` of float32 embeddings a (n, E) and b (n, E)."""
    logits = (cosine_matrix(a, b) - _as_float32(margins)) / _as_float32(temperature)
    ce = [soft_cross_entropy(to_float32(target), logits, axis=axis)
          for target, axis in zip(targets, (1, 0))]
    return 0.5 * (ce[0] + ce[1])


def soft_contrastive_margin(image_embeddings, text_embeddings, weights, margins, *,
                            relative_distance=True):
    """Margin form of the soft contrastive loss, one value per anchor i.

    With d_ij = ||u_i - v_j||_2 (divided by its row mean sum_k d_ik / m when
    `relative_distance`; the gradient flows through the mean, as in Kim et al.'s code),

        l_i = sum_j [ w_ij * d_ij^2 + (1 - w_ij) * max(0, m_ij - d_ij)^2 ].

    `text_embeddings=None` is an intra-modal block: u against itself, with an exact 0 diagonal.

    Args:
        image_embeddings: (n, E) embeddings u_i, used as given (not normalised).
        text_embeddings: (m, E) embeddings v_j, or None (u against itself).
        weights: (n, m) pull weights w_ij in [0, 1].
        margins: (n, m) margins m_ij, or one float.
        relative_distance: divide d_ij by its row mean.

    Returns:
        float32 tensor of shape (n,).
    """
    SoftContrastiveOptions(relative_distance=relative_distance)
    named = {"image_embeddings": image_embeddings}
    if text_embeddings is not None:
        named["text_embeddings"] = text_embeddings
    e = check_embeddings(**named)
    return margin_kernel(e["image_embeddings"], e.get("text_embeddings"), weights, margins,
                         relative_distance)


def soft_contrastive_infonce(image_embeddings, text_embeddings, targets, margins=0.0, *,
                             temperature=0.1):
    """InfoNCE form of the soft contrastive loss, one value per anchor i.

    With logits z_ij = (cos(u_i, v_j) - m_ij) / temperature and `targets` = (q, q') from
    `soft_infonce_targets`,

        l_i = 0.5 * ( -sum_j q_ij log softmax_j(z_ij) - sum_j q'_ji log softmax_j(z_ji) )

    (the second term: anchor v_i against all u_j, soft-max over the first axis). A margin equal
    for a whole row shifts every logit of it equally, so a fixed margin has no effect.

    Args:
        image_embeddings: (n, E) embeddings u_i (cosine: need not be normalised).
        text_embeddings: (n, E) embeddings v_j.
        targets: (image_to_text, text_to_image), two (n, n) matrices.
        margins: (n, n) margins m_ij, or one float.
        temperature: > 0, a float or a scalar tensor (e.g. a learned one).

    Returns:
        float32 tensor of shape (n,).
    """
    SoftContrastiveOptions(temperature=temperature)
    e = check_embeddings(image_embeddings=image_embeddings, text_embeddings=text_embeddings)
    return infonce_kernel(e["image_embeddings"], e["text_embeddings"], targets, margins,
                          temperature)
