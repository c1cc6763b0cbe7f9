"""The soft contrastive loss of multimodal embedding transfer (METHOD.md, Stage 2).

A frozen source model's embeddings (s_i, t_j) give relaxed labels w_ij; the target model's
embeddings (u_i, v_j) are pulled together in proportion to w_ij and pushed apart, up to a
margin, in proportion to 1 - w_ij.
"""

import numbers

import keras
from keras import ops

from keras_cmr.losses._common import (
    EPSILON,
    DictLossWrapper,
    check_embeddings,
    check_labels,
    check_non_negative,
    check_positive,
    cosine_matrix,
    distances,
    l2_normalize,
    self_squared_distances,
    label_similarity,
    soft_cross_entropy,
    squared_distances,
    to_float32,
    unpack,
    with_learned_temperature,
)

MARGINS = ("relaxed", "fixed")
LABEL_WEIGHTS = ("relaxed", "hard")
FORMS = ("margin", "infonce")
# sigma="median" on a batch whose source embeddings all coincide would divide by 0.
SIGMA_FLOOR = 1e-6


def _check_sigma(sigma):
    if isinstance(sigma, str):
        if sigma != "median":
            raise ValueError(f'sigma must be a positive number or "median"; received {sigma!r}')
    elif not isinstance(sigma, numbers.Real) or isinstance(sigma, bool) or sigma <= 0:
        raise ValueError(f'sigma must be a positive number or "median"; received {sigma!r}')


def _sigma_value(sigma, source_squared_distances):
    """sigma itself, or the batch median of ||s_i - t_j||^2 (no gradient, floored)."""
    if sigma != "median":
        return float(sigma)
    median = ops.median(ops.reshape(ops.stop_gradient(source_squared_distances), (-1,)))
    return ops.maximum(ops.cast(median, "float32"), SIGMA_FLOOR)


def _normalized_source(x):
    return ops.stop_gradient(l2_normalize(to_float32(x)))


def relaxed_labels(source_image_embeddings, source_text_embeddings, sigma=1.0):
    """Relaxed labels of the source model: w_ij = exp(-||s_i - t_j||^2 / sigma).

    The source embeddings are L2-normalised and carry no gradient.

    Args:
        source_image_embeddings: (n, F) source image embeddings s_i.
        source_text_embeddings: (m, F) source text embeddings t_j.
        sigma: positive float, or "median" for the median of ||s_i - t_j||^2 over the batch
            (floored at 1e-6).

    Returns:
        float32 tensor of shape (n, m) with entries in (0, 1].
    """
    _check_sigma(sigma)
    s = _normalized_source(source_image_embeddings)
    t = _normalized_source(source_text_embeddings)
    squared = squared_distances(s, t)
    return ops.exp(-squared / _sigma_value(sigma, squared))


def _check_options(sigma, delta, margin, label_mix, intra_modal_weight, form, temperature,
                   source_temperature, label_weights):
    _check_sigma(sigma)
    check_non_negative("delta", delta)
    if margin not in MARGINS:
        raise ValueError(f"margin must be one of {MARGINS}; received margin={margin!r}")
    if label_weights not in LABEL_WEIGHTS:
        raise ValueError(f"label_weights must be one of {LABEL_WEIGHTS}; received "
                         f"label_weights={label_weights!r}")
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}; received form={form!r}")
    if not 0.0 <= label_mix <= 1.0:
        raise ValueError(f"label_mix must be in [0, 1]; received label_mix={label_mix!r}")
    check_non_negative("intra_modal_weight", intra_modal_weight)
    check_positive("temperature", temperature)
    check_positive("source_temperature", source_temperature)


def _margin_block(w, margins, a, b, relative_distance):
    """sum_j [w_ij d_ij^2 + (1 - w_ij) max(0, m_ij - d_ij)^2], d_ij = ||a_i - b_j|| (b=None: a)."""
    d = distances(a, b)
    if relative_distance:
        # Kim et al. keep the gradient through the row mean.
        d = d / ops.maximum(ops.mean(d, axis=1, keepdims=True), EPSILON)
    return ops.sum(w * ops.square(d) + (1.0 - w) * ops.square(ops.relu(margins - d)), axis=1)


def _infonce_block(source_a, source_b, y, margins, a, b, label_mix, temperature,
                   source_temperature, hard_targets):
    """0.5 * (CE over j of anchor a_i + CE over i of anchor b_j), soft targets from the source
    (hard_targets: the normalised hard labels alone)."""
    logits = (cosine_matrix(a, a if b is None else b) - margins) / temperature
    source_logits = cosine_matrix(source_a, source_b) / source_temperature
    ce = []
    for axis in (1, 0):  # 1: a_i ranks all b_j (e.g. image->text); 0: b_i ranks all a_j.
        hard = None if y is None else y / ops.maximum(ops.sum(y, axis=axis, keepdims=True),
                                                      EPSILON)
        if hard_targets:
            targets = hard
        else:
            targets = ops.softmax(source_logits, axis=axis)
            if label_mix > 0:
                targets = label_mix * hard + (1.0 - label_mix) * targets
        ce.append(soft_cross_entropy(targets, logits, axis=axis))
    return 0.5 * (ce[0] + ce[1])


def soft_contrastive(image_embeddings, text_embeddings, source_image_embeddings=None,
                     source_text_embeddings=None, labels=None, *, sigma=1.0, delta=1.5,
                     margin="relaxed", relative_distance=True, label_mix=0.75,
                     intra_modal_weight=0.0, form="margin", temperature=0.1,
                     source_temperature=0.1, label_weights="relaxed"):
    """Soft contrastive loss of embedding transfer, one value per anchor (pair) i.

    With s, t the L2-normalised source embeddings (no gradient) and u, v the target ones:

        w_ij = lam * y_ij + (1 - lam) * exp(-||s_i - t_j||^2 / sigma)
        m_ij = delta * (1 - w_ij)  (margin="relaxed")   or   m_ij = delta  (margin="fixed")

    where y_ij = 1 for equal classes (multi-hot: the Jaccard index of the label sets).

    form="margin": with d_ij = ||u_i - v_j||_2 (divided by its row mean sum_k d_ik / n when
    `relative_distance`) and the pull weight p_ij = w_ij (label_weights="relaxed") or
    p_ij = y_ij (label_weights="hard": only the margins are relaxed),

        l_i = sum_j [ p_ij * d_ij^2 + (1 - p_ij) * max(0, m_ij - d_ij)^2 ]

    so mean_i l_i = (1/n) sum_ij [...] is METHOD.md's L_IT.

    form="infonce": logits z_ij = (cos(u_i, v_j) - m_ij) / temperature and targets
    q_ij = lam * y_ij / sum_k y_ik + (1 - lam) * softmax_j(cos(s_i, t_j) / source_temperature)
    (label_weights="hard": q_ij = y_ij / sum_k y_ik), for both directions (text->image: the
    same with i and j swapped, softmax over i),

        l_i = 0.5 * ( -sum_j q_ij log softmax_j(z_ij) - sum_j q'_ji log softmax_j(z_ji) ).

    A fixed margin shifts every logit of a row equally, so it has no effect in this form.

    Without source embeddings (both None) the loss is the no-source control of the ablation:
    the source term is dropped, w_ij = lam * y_ij, margin form only.

    intra_modal_weight gamma > 0 adds gamma * (the same term over the image-image block, from
    (s, s) and (u, u), plus over the text-text block, from (t, t) and (v, v)) to l_i, with the
    same sigma (the cross-modal median when sigma="median"); the diagonal i = j is included.

    Args:
        image_embeddings: (n, E) target image embeddings u_i, used as given (not normalised).
        text_embeddings: (n, E) target text embeddings v_j, used as given.
        source_image_embeddings: (n, F) source image embeddings s_i, or None (no source).
        source_text_embeddings: (n, F) source text embeddings t_j, or None (no source).
        labels: (n,) class indices or (n, C) multi-hot; needed when label_mix > 0, with
            label_weights="hard" and without a source.
        sigma: bandwidth of the relaxed labels, a positive float or "median" (the batch median
            of ||s_i - t_j||^2, without gradient, floored at 1e-6).
        delta: margin scale, >= 0.
        margin: "relaxed" (m_ij = delta * (1 - w_ij)) or "fixed" (m_ij = delta).
        relative_distance: divide d_ij by its row mean (margin form only).
        label_mix: lam in [0, 1], the weight of the hard labels.
        intra_modal_weight: gamma >= 0, the weight of the intra-modal blocks.
        form: "margin" or "infonce".
        temperature: temperature of the target logits (infonce form); a float or a scalar tensor.
        source_temperature: temperature of the source targets (infonce form).
        label_weights: "relaxed" (pull by w_ij) or "hard" (pull by y_ij, margins still relaxed).

    Defaults: sigma 1, delta 1.5, lam 0.75, chosen on the validation split of the Wikipedia
    benchmark (experiments/search.py; docs/results.md).

    Returns:
        float32 tensor of shape (n,): the per-anchor losses l_i; their mean is the batch loss.
    """
    _check_options(sigma, delta, margin, label_mix, intra_modal_weight, form, temperature,
                   source_temperature, label_weights)
    with_source = source_image_embeddings is not None or source_text_embeddings is not None
    if with_source and (source_image_embeddings is None or source_text_embeddings is None):
        raise ValueError("pass both source_image_embeddings and source_text_embeddings, or "
                         "neither (the no-source control)")
    if not with_source and form != "margin":
        raise ValueError(f'the no-source control (no source embeddings) has the margin form '
                         f'only; received form={form!r}')
    needs_labels = {"label_mix > 0": label_mix > 0, 'label_weights="hard"':
                    label_weights == "hard", "no source embeddings": not with_source}
    if labels is None and any(needs_labels.values()):
        reasons = ", ".join(reason for reason, needed in needs_labels.items() if needed)
        raise ValueError(f"labels are needed with {reasons}; pass labels (or, with a source, "
                         "set label_mix=0 and label_weights='relaxed' for source-only labels)")
    named = {"image_embeddings": image_embeddings, "text_embeddings": text_embeddings}
    if with_source:
        named.update(source_image_embeddings=source_image_embeddings,
                     source_text_embeddings=source_text_embeddings)
    e = check_embeddings(**named)
    u, v = e["image_embeddings"], e["text_embeddings"]
    pairs = [("image_embeddings", "text_embeddings")]
    if with_source:
        pairs.append(("source_image_embeddings", "source_text_embeddings"))
    for a, b in pairs:
        if None not in (e[a].shape[-1], e[b].shape[-1]) and e[a].shape[-1] != e[b].shape[-1]:
            raise ValueError(f"{a} and {b} must have the same embedding size; received "
                             f"{e[a].shape[-1]} and {e[b].shape[-1]}")
    y = None
    if labels is not None:
        labels = check_labels(labels, e)
        y = label_similarity(labels, labels)
    if not isinstance(temperature, numbers.Real):
        temperature = to_float32(temperature)

    # (source a, source b, target a, target b, ||source a_i - source b_j||^2, weight);
    # target b = None marks an intra-modal block (a against itself).
    if with_source:
        s = _normalized_source(e["source_image_embeddings"])
        t = _normalized_source(e["source_text_embeddings"])
        cross_squared = squared_distances(s, t)
        sigma_value = _sigma_value(sigma, cross_squared)
        blocks = [(s, t, u, v, cross_squared, 1.0)]
        if intra_modal_weight > 0:
            blocks += [(s, s, u, None, self_squared_distances(s), intra_modal_weight),
                       (t, t, v, None, self_squared_distances(t), intra_modal_weight)]
    else:
        blocks = [(None, None, u, v, None, 1.0)]
        if intra_modal_weight > 0:
            blocks += [(None, None, u, None, None, intra_modal_weight),
                       (None, None, v, None, None, intra_modal_weight)]
    per_anchor = 0.0
    for source_a, source_b, a, b, squared, weight in blocks:
        if squared is None:
            w = label_mix * y
        else:
            w = ops.exp(-squared / sigma_value)
            if label_mix > 0:
                w = label_mix * y + (1.0 - label_mix) * w
        margins = delta * (1.0 - w) if margin == "relaxed" else delta
        hard_labels = label_weights == "hard"
        if form == "margin":
            block = _margin_block(y if hard_labels else w, margins, a, b, relative_distance)
        else:
            block = _infonce_block(source_a, source_b, y, margins, a, b, label_mix,
                                   temperature, source_temperature, hard_labels)
        per_anchor = per_anchor + weight * block
    return per_anchor


def _soft_contrastive_from_dict(labels, y_pred, **options):
    # A dict without source entries is the no-source control (a PairwiseModel's y_pred).
    keys = ("image", "text", "source_image", "source_text")
    if isinstance(y_pred, dict) and "source_image" not in y_pred and "source_text" not in y_pred:
        keys = keys[:2]
    embeddings = unpack(y_pred, keys, "SoftContrastiveLoss") + [None] * (4 - len(keys))
    return soft_contrastive(*embeddings, labels, **with_learned_temperature(y_pred, options))


@keras.saving.register_keras_serializable(package="keras_cmr")
class SoftContrastiveLoss(DictLossWrapper):
    """Soft contrastive loss of multimodal embedding transfer; see `soft_contrastive`.

    Called as `loss(y_true=labels, y_pred={"image": u, "text": v, "source_image": s,
    "source_text": t})`, with an optional `"temperature"` entry (a scalar tensor) that replaces
    the configured temperature; `y_true` may be None when label_mix = 0. Without the two source
    entries it is the no-source control (w_ij = lam * y_ij), usable in a `PairwiseModel`. The
    result is the (weighted) mean of the per-anchor losses.

    Args:
        sigma, delta, margin, relative_distance, label_mix, intra_modal_weight, form,
        temperature, source_temperature, label_weights: as in `soft_contrastive`.
        reduction, name, dtype: as in `keras.losses.Loss`.
    """

    def __init__(self, sigma=1.0, delta=1.5, margin="relaxed", relative_distance=True,
                 label_mix=0.75, intra_modal_weight=0.0, form="margin", temperature=0.1,
                 source_temperature=0.1, label_weights="relaxed",
                 reduction="sum_over_batch_size", name="soft_contrastive", dtype=None):
        _check_options(sigma, delta, margin, label_mix, intra_modal_weight, form, temperature,
                       source_temperature, label_weights)
        super().__init__(
            _soft_contrastive_from_dict, reduction=reduction, name=name, dtype=dtype,
            sigma=sigma, delta=delta, margin=margin, relative_distance=relative_distance,
            label_mix=label_mix, intra_modal_weight=intra_modal_weight, form=form,
            temperature=temperature, source_temperature=source_temperature,
            label_weights=label_weights)
