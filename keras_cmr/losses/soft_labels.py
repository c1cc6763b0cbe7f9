"""The targets of the soft contrastive loss: relaxed labels, their margins, InfoNCE targets.

A frozen source model's embeddings (s_i, t_j) give relaxed labels; mixed with the hard labels
y_ij they become the pull weights w_ij and the margins m_ij of `soft_contrastive_margin`, or
(with the source's own soft-max) the targets of `soft_contrastive_infonce`. `soft_targets`
gives each block of pairs what the kernel of the chosen form takes.

The public functions check their options (through `SoftContrastiveOptions`) and inputs once
per call; `soft_targets`, `mixed_weights` and `infonce_targets` take checked options and the
label similarity y, computed once by the caller.
"""

import collections

from keras import ops

from keras_cmr.losses.distances import (
    EPSILON,
    cosine_matrix,
    l2_normalize,
    self_squared_distances,
    squared_distances,
    to_float32,
)
from keras_cmr.losses.inputs import check_embeddings, check_labels
from keras_cmr.losses.label_trust import check_label_trust, trusted_label_mix
from keras_cmr.losses.labels import label_similarity
from keras_cmr.options import SoftContrastiveOptions

# sigma="median" on a batch whose source embeddings all coincide would divide by 0.
SIGMA_FLOOR = 1e-6
# The blocks of pairs: cross-modal first, then the intra-modal ones (intra_modal_weight > 0).
BLOCKS = ("image_text", "image_image", "text_text")

SoftLabels = collections.namedtuple("SoftLabels", ["weights", "margins"])
SoftLabels.__doc__ = """One block's pull weights w (n, m) and margins m ((n, m), or a float)."""

SoftTargets = collections.namedtuple("SoftTargets", ["targets", "margins"])
SoftTargets.__doc__ = """What a kernel is given for one block: its targets (margin form: the
pull weights (n, m); InfoNCE form: the pair (q, q') of `soft_infonce_targets`) and margins."""


def has_source(source_image_embeddings, source_text_embeddings):
    """True with both source embeddings, False with neither (the no-source control)."""
    with_source = source_image_embeddings is not None or source_text_embeddings is not None
    if with_source and (source_image_embeddings is None or source_text_embeddings is None):
        raise ValueError("pass both source_image_embeddings and source_text_embeddings, or "
                         "neither (the no-source control)")
    return with_source


def normalized_source(x):
    """The L2-normalised source embeddings, in float32, without gradient."""
    return ops.stop_gradient(l2_normalize(to_float32(x)))


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
    SoftContrastiveOptions(sigma=sigma, calibration=calibration)
    s = normalized_source(source_image_embeddings)
    t = normalized_source(source_text_embeddings)
    exponents = _exponents(squared_distances(s, t), calibration)
    return _relaxed(exponents, _sigma_value(sigma, exponents))


def mixed_weights(s, t, y, options, blocks, label_mix=None):
    """Block -> w = lam * y + (1 - lam) * relaxed labels (no source, s = t = None: lam * y).

    s, t: normalised source embeddings; y: the label similarity (None when label_mix = 0);
    label_mix: lam, a float or an (n, n) matrix (`trusted_label_mix`); default
    options.label_mix. The intra-modal blocks share the cross-modal block's sigma (its median,
    if "median").
    """
    label_mix = options.label_mix if label_mix is None else label_mix
    if s is None:
        return dict.fromkeys(blocks, label_mix * y)
    exponents = {"image_text": _exponents(squared_distances(s, t), options.calibration)}
    sigma_value = _sigma_value(options.sigma, exponents["image_text"])
    if "image_image" in blocks:
        exponents.update(image_image=_exponents(self_squared_distances(s), options.calibration),
                         text_text=_exponents(self_squared_distances(t), options.calibration))
    weights = {}
    for block in blocks:
        w = _relaxed(exponents[block], sigma_value)
        weights[block] = (label_mix * y + (1.0 - label_mix) * w if options.label_mix > 0
                          else w)
    return weights


def _margins(weights, options):
    return options.delta * (1.0 - weights) if options.margin == "relaxed" else options.delta


def soft_labels(source_image_embeddings=None, source_text_embeddings=None, labels=None,
                label_trust=None, *, sigma=1.0, calibration="none", label_mix=0.75, delta=1.5,
                margin="relaxed", intra_modal=False, trust="global"):
    """Pull weights and margins of the soft contrastive loss, per block of pairs.

    With r_ij the relaxed labels of `relaxed_labels` (sigma, calibration) and y_ij the hard
    labels of `label_similarity`:

        w_ij = lam * y_ij + (1 - lam) * r_ij    (no source embeddings: w_ij = lam * y_ij)
        m_ij = delta * (1 - w_ij)  (margin="relaxed")   or   m_ij = delta  (margin="fixed")

    With trust="agreement", lam becomes lam_ij = label_mix * T_ij, T the `pair_trust` of the
    pairs' agreements `label_trust` (`keras_cmr.losses.label_trust`).

    Blocks: "image_text" from (s_i, t_j); with `intra_modal`, also "image_image" from (s_i,
    s_j) and "text_text" from (t_i, t_j), with the same sigma and calibration (the cross-modal
    median when sigma="median") and exact 0 distances on their diagonals.

    Args:
        source_image_embeddings: (n, F) source image embeddings s_i, or None (no source).
        source_text_embeddings: (n, F) source text embeddings t_j, or None (no source).
        labels: (n,) class indices or (n, C) multi-hot; needed when label_mix > 0 and
            without a source.
        label_trust: (n,) agreements a_i in [0, 1] (`label_agreement`); needed with
            trust="agreement", refused otherwise.
        sigma, calibration: as in `relaxed_labels`.
        label_mix: lam in [0, 1], the weight of the hard labels.
        delta: margin scale, >= 0.
        margin: "relaxed" or "fixed".
        intra_modal: also return the image-image and text-text blocks.
        trust: "global" (one lam) or "agreement" (lam_ij from `label_trust`).

    Returns:
        dict block name -> `SoftLabels(weights, margins)`: float32 (n, n) weights, and margins
        of the same shape (margin="relaxed") or the float delta (margin="fixed").
    """
    options = SoftContrastiveOptions(sigma=sigma, calibration=calibration, label_mix=label_mix,
                                     delta=delta, margin=margin, trust=trust)
    with_source = has_source(source_image_embeddings, source_text_embeddings)
    if labels is None and (label_mix > 0 or not with_source):
        raise ValueError("labels are needed when label_mix > 0 or without source embeddings")
    y = None
    if labels is not None:
        named = {}
        if with_source:
            named = check_embeddings(source_image_embeddings=source_image_embeddings,
                                     source_text_embeddings=source_text_embeddings)
        y = label_similarity(*[check_labels(labels, named)] * 2)
    label_trust = check_label_trust(label_trust, options,
                                    {} if labels is None else {"labels": labels})
    s = t = None
    if with_source:
        s = normalized_source(source_image_embeddings)
        t = normalized_source(source_text_embeddings)
    weights = mixed_weights(s, t, y, options, BLOCKS if intra_modal else BLOCKS[:1],
                            trusted_label_mix(options, label_trust))
    return {block: SoftLabels(w, _margins(w, options)) for block, w in weights.items()}


def infonce_targets(s, t, y, options):
    """`soft_infonce_targets` of normalised source embeddings s, t and label similarity y
    (None when unused), with label_weights="hard" for the hard targets alone."""
    def hard(axis):  # axis 1: s_i ranks all t_j (image->text); 0: t_j ranks all s_i.
        return y / ops.maximum(ops.sum(y, axis=axis, keepdims=True), EPSILON)

    if options.label_weights == "hard":
        return hard(1), hard(0)
    source_logits = cosine_matrix(s, t) / options.source_temperature
    soft = [ops.softmax(source_logits, axis=axis) for axis in (1, 0)]
    label_mix = options.label_mix
    if label_mix == 0:
        return tuple(soft)
    return tuple(label_mix * hard(axis) + (1.0 - label_mix) * q for axis, q in zip((1, 0), soft))


def soft_infonce_targets(source_image_embeddings, source_text_embeddings, labels=None, *,
                         label_mix=0.75, source_temperature=0.1, hard_targets=False):
    """Soft targets of `soft_contrastive_infonce`, one (n, m) matrix per retrieval direction.

        q_ij = lam * y_ij / sum_k y_ik + (1 - lam) * softmax_j(cos(s_i, t_j) / source_temperature)

    for anchors s_i (image -> text, soft-max over j), and the same with i and j swapped for
    anchors t_j (text -> image, soft-max and label sums over i); hard_targets: q_ij =
    y_ij / sum_k y_ik alone. An intra-modal block passes the same source twice.

    Args:
        source_image_embeddings: (n, F) source embeddings s_i (no gradient).
        source_text_embeddings: (m, F) source embeddings t_j (no gradient).
        labels: (n,) class indices or (n, C) multi-hot (n = m); needed when label_mix > 0 or
            hard_targets.
        label_mix: lam in [0, 1].
        source_temperature: temperature of the source soft-max, > 0.
        hard_targets: the normalised hard labels alone.

    Returns:
        (image_to_text, text_to_image): float32 (n, m) matrices; the first sums to 1 over each
        row, the second over each column (a row without a label-sharing partner sums to lam).
    """
    options = SoftContrastiveOptions(label_mix=label_mix, source_temperature=source_temperature,
                                     label_weights="hard" if hard_targets else "relaxed")
    if labels is None and (label_mix > 0 or hard_targets):
        raise ValueError("labels are needed with label_mix > 0 or hard_targets")
    s = normalized_source(source_image_embeddings)
    t = normalized_source(source_text_embeddings)
    y = None
    if labels is not None:
        y = label_similarity(*[check_labels(labels, {"source_image_embeddings": s})] * 2)
    return infonce_targets(s, t, y, options)


def soft_targets(source_image_embeddings, source_text_embeddings, y, options, label_trust=None):
    """Block -> `SoftTargets(targets, margins)`: what the kernel of `options.form` is given.

    The weights w and margins m are those of `soft_labels`; the targets are the pull weights
    (margin form: w, or y with label_weights="hard") or the pair (q, q') of
    `soft_infonce_targets` (InfoNCE form). Blocks: "image_text", and with intra_modal_weight > 0
    "image_image" and "text_text".

    Args:
        source_image_embeddings: (n, F) float32 source embeddings s_i (normalised here), or
            None (the no-source control).
        source_text_embeddings: (n, F) float32 source embeddings t_j, or None.
        y: (n, n) label similarity of `label_similarity`, or None when no part uses it.
        options: checked `SoftContrastiveOptions`.
        label_trust: (n,) checked agreements (`check_label_trust`) with trust="agreement".
    """
    s = t = None
    if source_image_embeddings is not None:
        s = normalized_source(source_image_embeddings)
        t = normalized_source(source_text_embeddings)
    blocks = BLOCKS if options.intra_modal_weight > 0 else BLOCKS[:1]
    sources = {"image_text": (s, t), "image_image": (s, s), "text_text": (t, t)}
    targets = {}
    label_mix = trusted_label_mix(options, label_trust)
    for block, w in mixed_weights(s, t, y, options, blocks, label_mix).items():
        if options.form == "margin":
            pulled = y if options.label_weights == "hard" else w
        else:
            pulled = infonce_targets(*sources[block], y, options)
        targets[block] = SoftTargets(pulled, _margins(w, options))
    return targets
