"""Pair-wise cross-modal losses with hard labels: the baselines of METHOD.md.

Each function takes the image embeddings u (n, E) and the text embeddings v (n, E) of n pairs
(u_i, v_i) and returns one float32 loss per anchor i, shape (n,); their mean is the batch loss.
With labels, y_ij = 1 when pair i and pair j share a class (multi-hot: at least one label).
"""

import numbers

import keras
from keras import ops

from keras_cmr.losses.base import DictLossWrapper, on_dict, unpack, with_learned_temperature
from keras_cmr.losses.cross_entropy import soft_cross_entropy
from keras_cmr.losses.distances import cosine_matrix, distances, to_float32
from keras_cmr.losses.inputs import check_embeddings, check_labels, check_same_width
from keras_cmr.losses.labels import same_class
from keras_cmr.options.checks import check_choice, check_non_negative, check_positive

MINING = ("hardest", "all")


def _pair(image_embeddings, text_embeddings, labels=None):
    e = check_embeddings(image_embeddings=image_embeddings, text_embeddings=text_embeddings)
    check_same_width(e, "image_embeddings", "text_embeddings")
    u, v = e["image_embeddings"], e["text_embeddings"]
    if labels is None:
        return u, v, None
    labels = check_labels(labels, e)
    return u, v, same_class(labels, labels)


def _temperature(temperature):
    check_positive("temperature", temperature)
    return temperature if isinstance(temperature, numbers.Real) else to_float32(temperature)


def _symmetric_cross_entropy(logits, y):
    """0.5 * (CE_i2t_i + CE_t2i_i), targets y_ij / sum_j y_ij (rows with no positive give 0)."""
    ce = []
    for axis in (1, 0):  # 1: image i ranks all texts; 0: text i ranks all images.
        targets = y / ops.maximum(ops.sum(y, axis=axis, keepdims=True), 1.0)
        ce.append(soft_cross_entropy(targets, logits, axis=axis))
    return 0.5 * (ce[0] + ce[1])


def contrastive(image_embeddings, text_embeddings, labels, *, margin=1.0):
    """Contrastive loss (Hadsell et al.) over all cross-modal pairs, one value per anchor.

        l_i = sum_j [ y_ij * d_ij^2 + (1 - y_ij) * max(0, margin - d_ij)^2 ],
        d_ij = ||u_i - v_j||_2 (embeddings used as given).

    The normalisation (sum over j, mean over i) is soft_contrastive's: soft_contrastive with
    label_mix=1, margin="fixed", delta=margin, relative_distance=False equals this loss for
    class-index labels.

    Args:
        image_embeddings: (n, E) image embeddings u_i.
        text_embeddings: (n, E) text embeddings v_j.
        labels: (n,) class indices or (n, C) multi-hot.
        margin: float >= 0, the distance beyond which negatives cost nothing.

    Returns:
        float32 tensor of shape (n,).
    """
    check_non_negative("margin", margin)
    u, v, y = _pair(image_embeddings, text_embeddings, labels)
    d = distances(u, v)
    return ops.sum(y * ops.square(d) + (1.0 - y) * ops.square(ops.relu(margin - d)), axis=1)


def triplet(image_embeddings, text_embeddings, labels=None, *, margin=0.2, mining="hardest"):
    """Bidirectional triplet ranking loss on cosine similarity (VSE++, Faghri et al.).

    With S_ij = cos(u_i, v_j), the positive of anchor i is its own pair (S_ii) and the negatives
    N_i are the j != i of another class (without labels: every j != i):

        mining="hardest": l_i = max_{j in N_i} [margin - S_ii + S_ij]_+
                              + max_{j in N_i} [margin - S_ii + S_ji]_+
        mining="all":     the same with sums over N_i instead of maxima.

    The first term ranks texts for image i, the second images for text i; an anchor with no
    negative contributes 0.

    Args:
        image_embeddings: (n, E) image embeddings u_i (normalised inside).
        text_embeddings: (n, E) text embeddings v_j (normalised inside).
        labels: optional (n,) class indices or (n, C) multi-hot.
        margin: float >= 0.
        mining: "hardest" or "all".

    Returns:
        float32 tensor of shape (n,).
    """
    check_non_negative("margin", margin)
    check_choice("mining", mining, MINING)
    u, v, y = _pair(image_embeddings, text_embeddings, labels)
    similarity = cosine_matrix(u, v)
    positive = ops.diagonal(similarity)[:, None]
    index = ops.arange(ops.shape(similarity)[0])
    negative = ops.not_equal(index[:, None], index[None, :])
    if y is not None:
        negative = ops.logical_and(negative, y < 0.5)
    per_anchor = 0.0
    for scores in (similarity, ops.transpose(similarity)):  # image anchors, then text anchors
        hinge = ops.where(negative, ops.relu(margin - positive + scores), 0.0)
        # The hinge is >= 0, so masked entries (0) never change the maximum of a valid row.
        reduced = ops.max(hinge, axis=1) if mining == "hardest" else ops.sum(hinge, axis=1)
        per_anchor = per_anchor + reduced
    return per_anchor


def infonce(image_embeddings, text_embeddings, *, temperature=0.07):
    """Symmetric InfoNCE / CLIP loss with the paired items as the only positives.

        z_ij = cos(u_i, v_j) / temperature,
        l_i = 0.5 * ( -log softmax_j(z_ij)[j=i] - log softmax_j(z_ji)[j=i] ).

    Args:
        image_embeddings: (n, E) image embeddings u_i (normalised inside).
        text_embeddings: (n, E) text embeddings v_j (normalised inside).
        temperature: a positive float or a scalar tensor (e.g. a learned one).

    Returns:
        float32 tensor of shape (n,).
    """
    temperature = _temperature(temperature)
    u, v, _ = _pair(image_embeddings, text_embeddings)
    logits = cosine_matrix(u, v) / temperature
    index = ops.arange(ops.shape(logits)[0])
    diagonal = ops.cast(ops.equal(index[:, None], index[None, :]), "float32")
    return _symmetric_cross_entropy(logits, diagonal)


def supervised_infonce(image_embeddings, text_embeddings, labels, *, temperature=0.1):
    """Supervised symmetric InfoNCE: every same-class cross-modal pair is a positive.

        z_ij = cos(u_i, v_j) / temperature,
        l_i = 0.5 * ( -sum_j y_ij / (sum_k y_ik) * log softmax_j(z_ij)
                      -sum_j y_ji / (sum_k y_ki) * log softmax_j(z_ji) ),

    y_ij = 1 when i and j share a class (multi-hot: at least one label); an anchor with no
    positive (an empty label set) contributes 0.

    Args:
        image_embeddings: (n, E) image embeddings u_i (normalised inside).
        text_embeddings: (n, E) text embeddings v_j (normalised inside).
        labels: (n,) class indices or (n, C) multi-hot.
        temperature: a positive float or a scalar tensor.

    Returns:
        float32 tensor of shape (n,).
    """
    temperature = _temperature(temperature)
    u, v, y = _pair(image_embeddings, text_embeddings, labels)
    return _symmetric_cross_entropy(cosine_matrix(u, v) / temperature, y)


PAIR = ("image", "text")


def _image_text(y_pred, loss_name):
    return unpack(y_pred, PAIR, loss_name)


def _infonce_from_dict(labels, y_pred, **options):
    image, text = _image_text(y_pred, "InfoNCELoss")
    return infonce(image, text, **with_learned_temperature(y_pred, options))


def _supervised_infonce_from_dict(labels, y_pred, **options):
    image, text = _image_text(y_pred, "SupervisedInfoNCELoss")
    return supervised_infonce(image, text, labels=labels,
                              **with_learned_temperature(y_pred, options))


@keras.saving.register_keras_serializable(package="keras_cmr")
class ContrastiveLoss(DictLossWrapper):
    """Contrastive loss over all cross-modal pairs; see `contrastive`.

    Called as `loss(y_true=labels, y_pred={"image": u, "text": v})`.
    """

    def __init__(self, margin=1.0, reduction="sum_over_batch_size", name="contrastive",
                 dtype=None):
        check_non_negative("margin", margin)
        super().__init__(on_dict(contrastive, PAIR, "ContrastiveLoss"), reduction=reduction,
                         name=name, dtype=dtype, margin=margin)


@keras.saving.register_keras_serializable(package="keras_cmr")
class TripletLoss(DictLossWrapper):
    """Bidirectional triplet ranking loss (VSE++); see `triplet`.

    Called as `loss(y_true=labels_or_None, y_pred={"image": u, "text": v})`.
    """

    def __init__(self, margin=0.2, mining="hardest", reduction="sum_over_batch_size",
                 name="triplet", dtype=None):
        check_non_negative("margin", margin)
        check_choice("mining", mining, MINING)
        super().__init__(on_dict(triplet, PAIR, "TripletLoss"), reduction=reduction,
                         name=name, dtype=dtype, margin=margin, mining=mining)


@keras.saving.register_keras_serializable(package="keras_cmr")
class InfoNCELoss(DictLossWrapper):
    """Symmetric InfoNCE / CLIP loss; see `infonce`.

    Called as `loss(y_true=labels_or_None, y_pred={"image": u, "text": v})`, with an optional
    `"temperature"` entry (a scalar tensor) that replaces the configured temperature.
    """

    def __init__(self, temperature=0.07, reduction="sum_over_batch_size", name="infonce",
                 dtype=None):
        check_positive("temperature", temperature)
        super().__init__(_infonce_from_dict, reduction=reduction, name=name, dtype=dtype,
                         temperature=temperature)


@keras.saving.register_keras_serializable(package="keras_cmr")
class SupervisedInfoNCELoss(DictLossWrapper):
    """Supervised symmetric InfoNCE; see `supervised_infonce`.

    Called as `loss(y_true=labels, y_pred={"image": u, "text": v})`, with an optional
    `"temperature"` entry (a scalar tensor) that replaces the configured temperature.
    """

    def __init__(self, temperature=0.1, reduction="sum_over_batch_size",
                 name="supervised_infonce", dtype=None):
        check_positive("temperature", temperature)
        super().__init__(_supervised_infonce_from_dict, reduction=reduction, name=name,
                         dtype=dtype, temperature=temperature)
