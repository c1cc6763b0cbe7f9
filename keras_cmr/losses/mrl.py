"""The MRL loss (Hu et al., "Learning Cross-Modal Retrieval with Noisy Labels", CVPR 2021).

MRL sums a robust clustering loss on a classifier shared by the modalities and a multimodal
contrastive loss on the embeddings. What each definition rests on is MRL's public code,
github.com/penghu-cs/MRL (`main_noisy.py`, `src/utils.py`, `utils/config.py`), checked
against the equations of the paper PDF in that repository; where the two differ the code is
followed and the difference is written down here and in docs/mrl.md.
"""

import keras
from keras import ops

from keras_cmr.losses.base import DictLossWrapper, on_dict
from keras_cmr.losses.distances import l2_normalize
from keras_cmr.losses.inputs import check_embeddings, check_labels
from keras_cmr.losses.labels import label_vectors
from keras_cmr.options.checks import check_fraction, check_positive

# MRL's code defaults (utils/config.py): `--beta 0.5` weighs the robust clustering loss
# against the contrastive loss, `--tau 1.0` divides the logits of both terms (main_noisy.py
# passes the one `args.tau` to `MeanClusteringError` and to the contrastive criterion; the
# paper's tau_1 and tau_2, both set to 1 in its section 4.1).
MRL_BETA = 0.5
MRL_TEMPERATURE = 1.0

# Stands in for -inf in a masked soft-max: exp underflows to 0, and a row masked entirely stays
# finite (the rows where that happens are replaced by 0 afterwards).
_MASKED = -1e30


def robust_clustering(image_logits, text_logits, *, labels, temperature=MRL_TEMPERATURE):
    """MRL's robust clustering loss of both modalities, one value per pair.

        p_i = softmax(a_i / temperature),   l_i = log(1 - p_i[y_i]) + log(1 - q_i[y_i])

    with q_i the same for the text logits b_i. Minimising it raises the labelled class's
    probability, but its gradient fades for a sample the classifier puts far from its label (a
    likely noisy one) where cross-entropy's grows. This is `MeanClusteringError.forward` of
    MRL's `src/utils.py`, log(sum_k (1 - y_ik) p_ik / sum_k p_ik), summed over the modalities
    as `main_noisy.py` sums it; computed here as a difference of log-sum-exps, so it stays
    finite when p_i[y_i] reaches 1. With (n, C) multi-hot labels the same formula takes the
    probability outside the label set; a row labelled with every class has none, and gives 0.
    MRL's logits are cosines to L2-normalised class centres, bounded by 1 / temperature.

    Args:
        image_logits: (n, C) image logits a_i.
        text_logits: (n, C) text logits b_i.
        labels: (n,) class indices or (n, C) multi-hot.
        temperature: a positive float dividing the logits (MRL: 1).

    Returns:
        float32 tensor of shape (n,), each value <= 0.
    """
    check_positive("temperature", temperature)
    logits = check_embeddings(image_logits=image_logits, text_logits=text_logits)
    labels = check_labels(labels, logits)
    classes = {x.shape[-1] for x in logits.values()}
    if len(classes) != 1 or None in classes:
        raise ValueError("the logits must have one static number of classes (last dimension); "
                         f"received {sorted(classes, key=str)}")
    num_classes = classes.pop()
    if len(labels.shape) == 2 and labels.shape[-1] not in (1, None, num_classes):
        raise ValueError(f"multi-hot labels have {labels.shape[-1]} classes but the logits have "
                         f"{num_classes}")
    outside = label_vectors(labels, num_classes) <= 0
    has_outside = ops.any(outside, axis=-1)
    total = 0.0
    for x in logits.values():
        scaled = x / temperature
        log_outside = (ops.logsumexp(ops.where(outside, scaled, _MASKED), axis=-1)
                       - ops.logsumexp(scaled, axis=-1))
        total = total + ops.where(has_outside, log_outside, 0.0)
    return total


def multimodal_contrastive(image_embeddings, text_embeddings, *, temperature=MRL_TEMPERATURE):
    """MRL's multimodal contrastive loss, one value per pair.

    The 2n embeddings z = (u_1..u_n, v_1..v_n) are L2-normalised; each z_a is an anchor whose
    positive is its partner z_a' (u_i's is v_i) and whose candidates are the other 2n - 1
    embeddings of either modality:

        l(a) = -log( exp(z_a . z_a' / t) / sum_{b != a} exp(z_a . z_b / t) ),
        l_i = l(u_i) + l(v_i).

    This is `cross_modal_contrastive_ctriterion` of MRL's `main_noisy.py` for two modalities:
    its two terms are equal (the similarity matrix is symmetric), so their sum is
    mean_i l_i. Its towers end in an L2 normalisation, hence dot products of unit vectors.
    The paper's equation (6) keeps the anchor itself in both sums; the code removes it, as
    here.

    Args:
        image_embeddings: (n, E) image embeddings u_i (normalised inside).
        text_embeddings: (n, E) text embeddings v_i (normalised inside).
        temperature: a positive float t (MRL: 1).

    Returns:
        float32 tensor of shape (n,).
    """
    check_positive("temperature", temperature)
    e = check_embeddings(image_embeddings=image_embeddings, text_embeddings=text_embeddings)
    u, v = l2_normalize(e["image_embeddings"]), l2_normalize(e["text_embeddings"])
    if None not in (u.shape[-1], v.shape[-1]) and u.shape[-1] != v.shape[-1]:
        raise ValueError("image_embeddings and text_embeddings must have the same embedding "
                         f"size; received {u.shape[-1]} and {v.shape[-1]}")
    z = ops.concatenate([u, v], axis=0)
    logits = ops.matmul(z, ops.transpose(z)) / temperature
    index = ops.arange(ops.shape(z)[0])
    others = ops.where(ops.equal(index[:, None], index[None, :]), _MASKED, logits)
    positive = ops.sum(u * v, axis=-1) / temperature
    per_anchor = ops.logsumexp(others, axis=-1) - ops.concatenate([positive, positive], axis=0)
    return ops.sum(ops.reshape(per_anchor, (2, -1)), axis=0)


def mrl(image_embeddings, text_embeddings, image_logits, text_logits, *, labels,
        beta=MRL_BETA, temperature=MRL_TEMPERATURE):
    """MRL's loss: beta * robust clustering + (1 - beta) * multimodal contrastive.

        l_i = beta * robust_clustering_i + (1 - beta) * multimodal_contrastive_i

    as `main_noisy.py` combines its two criteria, with one temperature for both; the mean
    over i is MRL's batch loss. beta = 1 leaves the robust clustering loss, beta = 0 the
    contrastive loss.

    Args:
        image_embeddings: (n, E) image embeddings u_i.
        text_embeddings: (n, E) text embeddings v_i.
        image_logits: (n, C) image class logits.
        text_logits: (n, C) text class logits.
        labels: (n,) class indices or (n, C) multi-hot.
        beta: weight in [0, 1] of the robust clustering loss (MRL's code default 0.5).
        temperature: positive divisor of both terms' logits (MRL: 1).

    Returns:
        float32 tensor of shape (n,).
    """
    check_fraction("beta", beta)
    e = check_embeddings(image_embeddings=image_embeddings, text_embeddings=text_embeddings,
                         image_logits=image_logits, text_logits=text_logits)
    clustering = robust_clustering(e["image_logits"], e["text_logits"], labels=labels,
                                   temperature=temperature)
    contrastive = multimodal_contrastive(e["image_embeddings"], e["text_embeddings"],
                                         temperature=temperature)
    return beta * clustering + (1.0 - beta) * contrastive


KEYS = ("image", "text", "image_logits", "text_logits")


@keras.saving.register_keras_serializable(package="keras_cmr")
class MRLLoss(DictLossWrapper):
    """MRL's loss; see `mrl`.

    Called as `loss(y_true=labels, y_pred={"image": u, "text": v, "image_logits": a,
    "text_logits": b})`.
    """

    def __init__(self, beta=MRL_BETA, temperature=MRL_TEMPERATURE,
                 reduction="sum_over_batch_size", name="mrl", dtype=None):
        check_fraction("beta", beta)
        check_positive("temperature", temperature)
        super().__init__(on_dict(mrl, KEYS, "MRLLoss"), reduction=reduction, name=name,
                         dtype=dtype, beta=beta, temperature=temperature)
