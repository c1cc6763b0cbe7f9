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
CALIBRATIONS = ("none", "row", "rank")
# sigma="median" on a batch whose source embeddings all coincide would divide by 0.
SIGMA_FLOOR = 1e-6


def _check_sigma(sigma):
    if isinstance(sigma, str):
        if sigma != "median":
            raise ValueError(f'sigma must be a positive number or "median"; received {sigma!r}')
    elif not isinstance(sigma, numbers.Real) or isinstance(sigma, bool) or sigma <= 0:
        raise ValueError(f'sigma must be a positive number or "median"; received {sigma!r}')


def _check_calibration(calibration):
    if calibration not in CALIBRATIONS:
        raise ValueError(f"calibration must be one of {CALIBRATIONS}; received "
                         f"calibration={calibration!r}")


def _ranks(values, axis):
    """The 0-based rank of each entry along `axis` (ties broken by position)."""
    return ops.cast(ops.argsort(ops.argsort(values, axis=axis), axis=axis), "float32")


def _exponents(squared, calibration):
    """The calibrated distances z of a block of source distances D_ij = ||s_i - t_j||^2.

    "none": [D]; "row": [D - min_k D_ik, D - min_k D_kj] (each anchor's nearest partner at 0,
    in both retrieval directions); "rank": [4 r_ij / (n - 1), 4 r'_ij / (n - 1)] with r_ij the
    rank of D_ij in row i and r'_ij in column j, scaled to [0, 4], the range of D on the unit
    sphere, so that sigma means the same in every calibration.
    """
    if calibration == "none":
        return [squared]
    if calibration == "row":
        return [squared - ops.min(squared, axis=axis, keepdims=True) for axis in (1, 0)]
    return [4.0 * _ranks(squared, axis) / ops.maximum(ops.cast(ops.shape(squared)[axis] - 1,
                                                               "float32"), 1.0)
            for axis in (1, 0)]


def _sigma_value(sigma, exponents):
    """sigma itself, or the batch median of the calibrated distances (no gradient, floored)."""
    if sigma != "median":
        return float(sigma)
    values = ops.concatenate([ops.reshape(ops.stop_gradient(z), (-1,)) for z in exponents], 0)
    return ops.maximum(ops.cast(ops.median(values), "float32"), SIGMA_FLOOR)


def _relaxed(exponents, sigma_value):
    """mean over the calibrated distances z of exp(-z / sigma)."""
    return sum(ops.exp(-z / sigma_value) for z in exponents) / len(exponents)


def _normalized_source(x):
    return ops.stop_gradient(l2_normalize(to_float32(x)))


def relaxed_labels(source_image_embeddings, source_text_embeddings, sigma=1.0,
                   calibration="none"):
    """Relaxed labels of the source model: w_ij = exp(-||s_i - t_j||^2 / sigma) (uncalibrated).

    The source embeddings are L2-normalised and carry no gradient. A calibration replaces the
    squared distance D_ij = ||s_i - t_j||^2 so that w varies across the pairs of a batch even
    when the source puts every pair far apart:

    - "row": w_ij = 0.5 * (exp(-(D_ij - min_k D_ik) / sigma) + exp(-(D_ij - min_k D_kj) / sigma)),
      a softmax over the batch with temperature sigma, divided by its maximum, in each direction
      (each image's and each text's nearest partner gets 1);
    - "rank": w_ij = 0.5 * (exp(-4 r_ij / ((n - 1) sigma)) + exp(-4 r'_ij / ((n - 1) sigma))),
      r_ij the 0-based rank of D_ij among the D_ik of row i, r'_ij among the D_kj of column j
      (ties broken by position): depends on the order of the source's distances only.

    Args:
        source_image_embeddings: (n, F) source image embeddings s_i.
        source_text_embeddings: (m, F) source text embeddings t_j.
        sigma: positive float, or "median" for the median over the batch of the calibrated
            distances in the exponent (floored at 1e-6).
        calibration: "none", "row" or "rank".

    Returns:
        float32 tensor of shape (n, m) with entries in (0, 1].
    """
    _check_sigma(sigma)
    _check_calibration(calibration)
    s = _normalized_source(source_image_embeddings)
    t = _normalized_source(source_text_embeddings)
    exponents = _exponents(squared_distances(s, t), calibration)
    return _relaxed(exponents, _sigma_value(sigma, exponents))


def _check_options(sigma, delta, margin, label_mix, intra_modal_weight, form, temperature,
                   source_temperature, label_weights, calibration):
    _check_sigma(sigma)
    _check_calibration(calibration)
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
                     source_temperature=0.1, label_weights="relaxed", calibration="none"):
    """Soft contrastive loss of embedding transfer, one value per anchor (pair) i.

    With s, t the L2-normalised source embeddings (no gradient) and u, v the target ones:

        w_ij = lam * y_ij + (1 - lam) * exp(-||s_i - t_j||^2 / sigma)
        m_ij = delta * (1 - w_ij)  (margin="relaxed")   or   m_ij = delta  (margin="fixed")

    where y_ij = 1 for equal classes (multi-hot: the Jaccard index of the label sets); a
    `calibration` ("row", "rank") replaces the exponential term by the calibrated relaxed labels
    of `relaxed_labels`.

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
    same sigma and calibration (the cross-modal median when sigma="median"); the diagonal
    i = j is included.

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
        calibration: "none" (exp(-||s_i - t_j||^2 / sigma)), "row" or "rank"; see
            `relaxed_labels`.

    Defaults: sigma 1, delta 1.5, lam 0.75, chosen on the validation split of the Wikipedia
    benchmark (experiments/search.py; docs/results.md).

    Returns:
        float32 tensor of shape (n,): the per-anchor losses l_i; their mean is the batch loss.
    """
    _check_options(sigma, delta, margin, label_mix, intra_modal_weight, form, temperature,
                   source_temperature, label_weights, calibration)
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

    # (source a, source b, target a, target b, calibrated source distances, weight);
    # target b = None marks an intra-modal block (a against itself).
    if with_source:
        s = _normalized_source(e["source_image_embeddings"])
        t = _normalized_source(e["source_text_embeddings"])
        cross = _exponents(squared_distances(s, t), calibration)
        sigma_value = _sigma_value(sigma, cross)
        blocks = [(s, t, u, v, cross, 1.0)]
        if intra_modal_weight > 0:
            blocks += [(x, x, target, None,
                        _exponents(self_squared_distances(x), calibration), intra_modal_weight)
                       for x, target in ((s, u), (t, v))]
    else:
        blocks = [(None, None, u, v, None, 1.0)]
        if intra_modal_weight > 0:
            blocks += [(None, None, u, None, None, intra_modal_weight),
                       (None, None, v, None, None, intra_modal_weight)]
    per_anchor = 0.0
    for source_a, source_b, a, b, exponents, weight in blocks:
        if exponents is None:
            w = label_mix * y
        else:
            w = _relaxed(exponents, sigma_value)
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
        temperature, source_temperature, label_weights, calibration: as in `soft_contrastive`.
        reduction, name, dtype: as in `keras.losses.Loss`.
    """

    def __init__(self, sigma=1.0, delta=1.5, margin="relaxed", relative_distance=True,
                 label_mix=0.75, intra_modal_weight=0.0, form="margin", temperature=0.1,
                 source_temperature=0.1, label_weights="relaxed", calibration="none",
                 reduction="sum_over_batch_size", name="soft_contrastive", dtype=None):
        _check_options(sigma, delta, margin, label_mix, intra_modal_weight, form, temperature,
                       source_temperature, label_weights, calibration)
        super().__init__(
            _soft_contrastive_from_dict, reduction=reduction, name=name, dtype=dtype,
            sigma=sigma, delta=delta, margin=margin, relative_distance=relative_distance,
            label_mix=label_mix, intra_modal_weight=intra_modal_weight, form=form,
            temperature=temperature, source_temperature=source_temperature,
            label_weights=label_weights, calibration=calibration)
