"""Class-wise losses of the source model (METHOD.md, Stage 1), summed over both modalities.

Each function takes the tensors first and the labels by keyword (`labels=...`; keyword-only,
so that a call in the former labels-first order fails instead of misreading its arguments) and
returns one float32 loss per pair i, shape (n,); their mean is the batch loss. Labels are (n,)
class indices or (n, C) multi-hot; the number of classes C is the last dimension of the logits
or predictions.
"""

import keras
from keras import ops

from keras_cmr.losses.base import DictLossWrapper, on_dict
from keras_cmr.losses.cross_entropy import soft_cross_entropy
from keras_cmr.losses.distances import l2_normalize, safe_norm, squared_distances, to_float32
from keras_cmr.losses.inputs import check_embeddings, check_labels, check_rank
from keras_cmr.losses.labels import label_vectors, one_hot_targets
from keras_cmr.options import SymmetricCrossEntropyOptions
from keras_cmr.options.checks import check_unit_interval

# log 0 in the reverse cross-entropy: Wang et al.'s A = -4 (ICCV 2019).
LOG_ZERO = -4.0
LOGITS = ("image_logits", "text_logits")
PREDICTIONS = ("image_predictions", "text_predictions")


def _check_classes(labels, num_classes, name):
    if len(labels.shape) == 2 and labels.shape[-1] not in (1, None, num_classes):
        raise ValueError(f"multi-hot labels have {labels.shape[-1]} classes but {name} has "
                         f"{num_classes}")


def _class_targets(labels, outputs, name, targets_fn):
    """(outputs cast to float32, targets (n, C)) after the shape checks."""
    outputs = check_embeddings(**outputs)
    labels = check_labels(labels, outputs)
    num_classes = {x.shape[-1] for x in outputs.values()}
    if len(num_classes) != 1 or None in num_classes:
        raise ValueError(f"the {name} must have one static number of classes (last dimension); "
                         f"received {sorted(num_classes, key=str)}")
    num_classes = num_classes.pop()
    _check_classes(labels, num_classes, name)
    return outputs, targets_fn(labels, num_classes)


def class_wise_cross_entropy(image_logits, text_logits, *, labels):
    """Softmax cross-entropy of both modalities' class logits, one value per pair.

        l_i = -sum_c y_ic log softmax_c(a_ic) - sum_c y_ic log softmax_c(b_ic)

    with y_i the one-hot class, or the multi-hot vector divided by its number of labels (an
    empty label set gives 0). With logits s * cos(e, W_c) this is the normalised-softmax loss.

    Args:
        image_logits: (n, C) image logits a_i.
        text_logits: (n, C) text logits b_i.
        labels: (n,) class indices or (n, C) multi-hot.

    Returns:
        float32 tensor of shape (n,).
    """
    logits, targets = _class_targets(
        labels, {"image_logits": image_logits, "text_logits": text_logits}, "logits",
        one_hot_targets)
    return (soft_cross_entropy(targets, logits["image_logits"])
            + soft_cross_entropy(targets, logits["text_logits"]))


def generalized_cross_entropy(image_logits, text_logits, *, labels, q=0.7):
    """Generalized cross-entropy (Zhang and Sabuncu, NeurIPS 2018) of both modalities' logits.

        l_i = (1 - p(a_i)^q) / q + (1 - p(b_i)^q) / q,   p(a_i) = sum_c y_ic softmax_c(a_i)

    with y_i as in `class_wise_cross_entropy` (an empty label set gives 0). As q -> 0 it tends
    to the cross-entropy; q = 1 is the mean absolute error of the class probability, which a
    wrong label pulls on less than the cross-entropy does. q = 0.7 is the paper's choice.

    Args:
        image_logits: (n, C) image logits a_i.
        text_logits: (n, C) text logits b_i.
        labels: (n,) class indices or (n, C) multi-hot.
        q: in (0, 1].

    Returns:
        float32 tensor of shape (n,).
    """
    check_unit_interval("q", q)
    logits, targets = _class_targets(
        labels, {"image_logits": image_logits, "text_logits": text_logits}, "logits",
        one_hot_targets)
    labelled = ops.sum(targets, axis=-1) > 0
    total = 0.0
    for name in ("image_logits", "text_logits"):
        log_softmax = logits[name] - ops.logsumexp(logits[name], axis=-1, keepdims=True)
        # log p = log sum_c y_c softmax_c, over the labelled classes only.
        terms = ops.where(targets > 0, ops.log(ops.maximum(targets, 1e-30)) + log_softmax,
                          -1e9)
        # (1 - p^q) / q as -expm1(q log p) / q: exact to float32 even for a small q.
        value = -ops.expm1(q * ops.logsumexp(terms, axis=-1)) / q
        total = total + ops.where(labelled, value, 0.0)
    return total


def symmetric_cross_entropy(image_logits, text_logits, *, labels, alpha=0.1, beta=1.0):
    """Symmetric cross-entropy (Wang et al., ICCV 2019) of both modalities' logits.

        l_i = sce(a_i) + sce(b_i),   sce(a) = alpha * CE(y, a) + beta * RCE(y, a),
        CE(y, a) = -sum_c y_c log p_c,   RCE(y, a) = -sum_c p_c max(log y_c, A),

    with p = softmax(a), y_i as in `class_wise_cross_entropy` (an empty label set gives 0)
    and log 0 = A = -4 (`LOG_ZERO`, the paper's value). For one class per pair RCE = -A (1 -
    p_y): bounded, so a wrong label pulls on it less than on the cross-entropy. The code the
    authors released (HanxunH/SCELoss-Reproduce) clamps y at 1e-4 instead, A = log 1e-4
    (about -9.2): for one class per pair the same loss with beta 2.3 times larger. alpha 0.1,
    beta 1.0 are the paper's choice for CIFAR-10, not tuned here.

    Args:
        image_logits: (n, C) image logits a_i.
        text_logits: (n, C) text logits b_i.
        labels: (n,) class indices or (n, C) multi-hot.
        alpha: weight of the cross-entropy, >= 0.
        beta: weight of the reverse cross-entropy, >= 0 (alpha + beta > 0).

    Returns:
        float32 tensor of shape (n,).
    """
    SymmetricCrossEntropyOptions(alpha, beta)
    logits, targets = _class_targets(
        labels, {"image_logits": image_logits, "text_logits": text_logits}, "logits",
        one_hot_targets)
    labelled = ops.sum(targets, axis=-1) > 0
    log_targets = ops.maximum(ops.log(ops.maximum(targets, 1e-30)), LOG_ZERO)
    total = 0.0
    for name in LOGITS:
        reverse = -ops.sum(ops.softmax(logits[name], axis=-1) * log_targets, axis=-1)
        value = alpha * soft_cross_entropy(targets, logits[name]) + beta * reverse
        total = total + ops.where(labelled, value, 0.0)
    return total


def prototype_contrastive(image_embeddings, text_embeddings, prototypes, *, labels):
    """Prototype contrastive loss (PCL): cross-entropy of -squared distances to prototypes.

        l_i = -sum_c y_ic log softmax_c(-||u_i - p_c||^2)
              -sum_c y_ic log softmax_c(-||v_i - p_c||^2)

    with p_c the L2-normalised prototypes and y_i as in `class_wise_cross_entropy`.

    Args:
        image_embeddings: (n, E) image embeddings u_i (used as given).
        text_embeddings: (n, E) text embeddings v_i (used as given).
        prototypes: (C, E) class prototypes (normalised inside).
        labels: (n,) class indices or (n, C) multi-hot.

    Returns:
        float32 tensor of shape (n,).
    """
    prototypes = to_float32(prototypes)
    check_rank("prototypes", prototypes, 2)
    prototypes = l2_normalize(prototypes)
    embeddings = check_embeddings(image_embeddings=image_embeddings,
                                  text_embeddings=text_embeddings)
    sizes = {x.shape[-1] for x in (prototypes, *embeddings.values())} - {None}
    if len(sizes) > 1:
        raise ValueError("prototypes and embeddings must have the same embedding size; received "
                         f"{sorted(sizes)}")
    logits = {name: -squared_distances(x, prototypes) for name, x in embeddings.items()}
    return class_wise_cross_entropy(logits["image_embeddings"], logits["text_embeddings"],
                                    labels=labels)


def label_regression(image_predictions, text_predictions, *, labels):
    """Label regression loss (DSCMR's first term), one value per pair.

        l_i = ||p_i - y_i||_2 + ||q_i - y_i||_2   (the norm, not its square)

    with y_i the one-hot class or the multi-hot vector; differentiable where p_i = y_i.

    Args:
        image_predictions: (n, C) image label predictions p_i.
        text_predictions: (n, C) text label predictions q_i.
        labels: (n,) class indices or (n, C) multi-hot.

    Returns:
        float32 tensor of shape (n,).
    """
    predictions, targets = _class_targets(
        labels, {"image_predictions": image_predictions, "text_predictions": text_predictions},
        "predictions", label_vectors)
    return (safe_norm(predictions["image_predictions"] - targets)
            + safe_norm(predictions["text_predictions"] - targets))


@keras.saving.register_keras_serializable(package="keras_cmr")
class ClassWiseCrossEntropy(DictLossWrapper):
    """Cross-entropy of both towers' class logits; see `class_wise_cross_entropy`.

    Called as `loss(y_true=labels, y_pred={"image_logits": a, "text_logits": b})`; serves the
    normalised-softmax classifier and the prototype (PCL) layer alike.
    """

    def __init__(self, reduction="sum_over_batch_size", name="class_wise_cross_entropy",
                 dtype=None):
        super().__init__(on_dict(class_wise_cross_entropy, LOGITS, "ClassWiseCrossEntropy"),
                         reduction=reduction, name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package="keras_cmr")
class GeneralizedCrossEntropy(DictLossWrapper):
    """Generalized cross-entropy of both towers' class logits; see
    `generalized_cross_entropy`.

    Called as `loss(y_true=labels, y_pred={"image_logits": a, "text_logits": b})`.
    """

    def __init__(self, q=0.7, reduction="sum_over_batch_size",
                 name="generalized_cross_entropy", dtype=None):
        check_unit_interval("q", q)
        super().__init__(on_dict(generalized_cross_entropy, LOGITS, "GeneralizedCrossEntropy"),
                         reduction=reduction, name=name, dtype=dtype, q=q)


@keras.saving.register_keras_serializable(package="keras_cmr")
class SymmetricCrossEntropy(DictLossWrapper):
    """Symmetric cross-entropy of both towers' class logits; see `symmetric_cross_entropy`.

    Called as `loss(y_true=labels, y_pred={"image_logits": a, "text_logits": b})`.
    """

    def __init__(self, alpha=0.1, beta=1.0, reduction="sum_over_batch_size",
                 name="symmetric_cross_entropy", dtype=None):
        options = SymmetricCrossEntropyOptions(alpha, beta)
        super().__init__(on_dict(symmetric_cross_entropy, LOGITS, "SymmetricCrossEntropy"),
                         reduction=reduction, name=name, dtype=dtype, **options.to_dict())


@keras.saving.register_keras_serializable(package="keras_cmr")
class LabelRegressionLoss(DictLossWrapper):
    """Label regression of both towers; see `label_regression`.

    Called as `loss(y_true=labels, y_pred={"image_predictions": p, "text_predictions": q})`.
    """

    def __init__(self, reduction="sum_over_batch_size", name="label_regression", dtype=None):
        super().__init__(on_dict(label_regression, PREDICTIONS, "LabelRegressionLoss"),
                         reduction=reduction, name=name, dtype=dtype)
