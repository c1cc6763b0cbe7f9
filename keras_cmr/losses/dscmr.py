"""The DSCMR loss (Zhen et al., "Deep supervised cross-modal retrieval", CVPR 2019)."""

import keras
from keras import ops

from keras_cmr.losses.base import DictLossWrapper, on_dict
from keras_cmr.losses.distances import cosine_matrix, safe_norm
from keras_cmr.losses.inputs import check_embeddings, check_labels
from keras_cmr.losses.labels import same_class
from keras_cmr.options.checks import check_non_negative
from keras_cmr.losses.class_wise import label_regression


def dscmr(image_embeddings, text_embeddings, image_predictions, text_predictions, *, labels,
          alpha=1e-3, beta=0.1):
    """DSCMR loss: label regression + alpha * pairwise likelihood + beta * pair distance.

    With y_ij = 1 when i and j share a class (multi-hot: at least one label) and, for each of
    the three blocks (a, b) in {(u, u), (v, v), (u, v)}, theta_ij = cos(a_i, b_j) / 2,

        J_i = sum_blocks (1/n) sum_j [ log(1 + exp(theta_ij)) - y_ij * theta_ij ],
        l_i = ||p_i - y_i||_2 + ||q_i - y_i||_2 + alpha * J_i + beta * ||u_i - v_i||_2.

    J_i averages over j, so mean_i J_i is DSCMR's mean over all n^2 pairs of each block.

    Args:
        image_embeddings: (n, E) image embeddings u_i.
        text_embeddings: (n, E) text embeddings v_i.
        image_predictions: (n, C) image label predictions p_i.
        text_predictions: (n, C) text label predictions q_i.
        labels: (n,) class indices or (n, C) multi-hot.
        alpha: weight of the pairwise likelihood, >= 0.
        beta: weight of the paired-item distance, >= 0.

    Returns:
        float32 tensor of shape (n,): the per-pair losses; their mean is the batch loss.
    """
    check_non_negative("alpha", alpha)
    check_non_negative("beta", beta)
    e = check_embeddings(image_embeddings=image_embeddings, text_embeddings=text_embeddings,
                         image_predictions=image_predictions, text_predictions=text_predictions)
    u, v = e["image_embeddings"], e["text_embeddings"]
    labels = check_labels(labels, e)
    y = same_class(labels, labels)
    likelihood = 0.0
    for a, b in ((u, u), (v, v), (u, v)):
        theta = 0.5 * cosine_matrix(a, b)
        likelihood = likelihood + ops.mean(ops.softplus(theta) - y * theta, axis=1)
    regression = label_regression(e["image_predictions"], e["text_predictions"], labels=labels)
    return regression + alpha * likelihood + beta * safe_norm(u - v)


KEYS = ("image", "text", "image_predictions", "text_predictions")


@keras.saving.register_keras_serializable(package="keras_cmr")
class DSCMRLoss(DictLossWrapper):
    """DSCMR loss; see `dscmr`.

    Called as `loss(y_true=labels, y_pred={"image": u, "text": v, "image_predictions": p,
    "text_predictions": q})`.
    """

    def __init__(self, alpha=1e-3, beta=0.1, reduction="sum_over_batch_size", name="dscmr",
                 dtype=None):
        check_non_negative("alpha", alpha)
        check_non_negative("beta", beta)
        super().__init__(on_dict(dscmr, KEYS, "DSCMRLoss"), reduction=reduction, name=name,
                         dtype=dtype, alpha=alpha, beta=beta)
