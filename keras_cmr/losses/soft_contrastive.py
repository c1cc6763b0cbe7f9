"""The soft contrastive loss of multimodal embedding transfer (METHOD.md, Stage 2).

A frozen source model's embeddings (s_i, t_j) give relaxed labels w_ij; the target model's
embeddings (u_i, v_j) are pulled together in proportion to w_ij and pushed apart, up to a
margin, in proportion to 1 - w_ij. `soft_contrastive` checks its options once
(`SoftContrastiveOptions`) and its inputs once, computes the label similarity y once, and
gives each block of pairs the targets of `soft_targets` to one of the kernels
(`soft_contrastive_margin`, `soft_contrastive_infonce`).
"""

import keras

from keras_cmr.losses.base import DictLossWrapper, unpack
from keras_cmr.losses.inputs import check_embeddings, check_labels, check_same_width
from keras_cmr.losses.label_trust import check_label_trust
from keras_cmr.losses.labels import label_similarity
from keras_cmr.options import SoftContrastiveOptions
from keras_cmr.losses.soft_kernels import infonce_kernel, margin_kernel
from keras_cmr.losses.soft_labels import has_source, soft_targets


def _checked_inputs(u, v, s, t, labels, label_trust, options):
    """The embeddings as float32 (s, t None without a source), the labels and the label
    trust (None unless trust="agreement"), checked."""
    with_source = has_source(s, t)
    if not with_source and options.form != "margin":
        raise ValueError(f'the no-source control (no source embeddings) has the margin form '
                         f'only; received form={options.form!r}')
    needs_labels = {"label_mix > 0": options.label_mix > 0,
                    'label_weights="hard"': options.label_weights == "hard",
                    "no source embeddings": not with_source}
    if labels is None and any(needs_labels.values()):
        reasons = ", ".join(reason for reason, needed in needs_labels.items() if needed)
        raise ValueError(f"labels are needed with {reasons}; pass labels (or, with a source, "
                         "set label_mix=0 and label_weights='relaxed' for source-only labels)")
    named = {"image_embeddings": u, "text_embeddings": v}
    if with_source:
        named.update(source_image_embeddings=s, source_text_embeddings=t)
    e = check_embeddings(**named)
    check_same_width(e, "image_embeddings", "text_embeddings")
    if with_source:
        check_same_width(e, "source_image_embeddings", "source_text_embeddings")
    labels = None if labels is None else check_labels(labels, e)
    label_trust = check_label_trust(label_trust, options,
                                    {"image_embeddings": e["image_embeddings"]})
    return (e["image_embeddings"], e["text_embeddings"], e.get("source_image_embeddings"),
            e.get("source_text_embeddings"), labels, label_trust)


def _soft_contrastive(u, v, s, t, labels, label_trust, options, temperature):
    """`soft_contrastive` with checked options; `temperature` replaces options.temperature."""
    u, v, s, t, labels, label_trust = _checked_inputs(u, v, s, t, labels, label_trust, options)
    y = None if labels is None else label_similarity(labels, labels)
    # block -> (embeddings a, embeddings b or None for a against itself, weight of the block)
    operands = {"image_text": (u, v, 1.0), "image_image": (u, None, options.intra_modal_weight),
                "text_text": (v, None, options.intra_modal_weight)}
    per_anchor = 0.0
    for block, (targets, margins) in soft_targets(s, t, y, options, label_trust).items():
        a, b, block_weight = operands[block]
        if options.form == "margin":
            loss = margin_kernel(a, b, targets, margins, options.relative_distance)
        else:
            loss = infonce_kernel(a, a if b is None else b, targets, margins, temperature)
        per_anchor = per_anchor + block_weight * loss
    return per_anchor


def soft_contrastive(image_embeddings, text_embeddings, source_image_embeddings=None,
                     source_text_embeddings=None, labels=None, label_trust=None, *, sigma=1.0,
                     delta=1.5, margin="relaxed", relative_distance=True, label_mix=0.75,
                     intra_modal_weight=0.0, form="margin", temperature=0.1,
                     source_temperature=0.1, label_weights="relaxed", calibration="none",
                     trust="global", trust_temperature=0.1):
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
        label_trust: (n,) agreements a_i in [0, 1] of `label_agreement`; needed with
            trust="agreement", refused with trust="global".
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
        trust: "global" (one lam for every pair) or "agreement" (lam_ij from `label_trust`).
        trust_temperature: the temperature of the agreements (`label_agreement`); the loss
            itself reads `label_trust` as given.

    Defaults: sigma 1, delta 1.5, lam 0.75, chosen on the validation split of the Wikipedia
    benchmark (experiments/search.py; docs/results.md).

    Returns:
        float32 tensor of shape (n,): the per-anchor losses l_i; their mean is the batch loss.
    """
    options = SoftContrastiveOptions.from_arguments(locals())
    return _soft_contrastive(image_embeddings, text_embeddings, source_image_embeddings,
                             source_text_embeddings, labels, label_trust, options, temperature)


def _soft_contrastive_from_dict(labels, y_pred, options):
    # A dict without source entries is the no-source control (a PairwiseModel's y_pred).
    keys = ("image", "text", "source_image", "source_text")
    if isinstance(y_pred, dict) and "source_image" not in y_pred and "source_text" not in y_pred:
        keys = keys[:2]
    embeddings = unpack(y_pred, keys, "SoftContrastiveLoss") + [None] * (4 - len(keys))
    temperature = y_pred.get("temperature", options.temperature)
    return _soft_contrastive(*embeddings, labels, y_pred.get("label_trust"), options,
                             temperature)


@keras.saving.register_keras_serializable(package="keras_cmr")
class SoftContrastiveLoss(DictLossWrapper):
    """Soft contrastive loss of multimodal embedding transfer; see `soft_contrastive`.

    Called as `loss(y_true=labels, y_pred={"image": u, "text": v, "source_image": s,
    "source_text": t})`, with an optional `"temperature"` entry (a scalar tensor) that replaces
    the configured temperature and, with trust="agreement", a `"label_trust"` entry (the (n,)
    agreements of the batch's pairs); `y_true` may be None when label_mix = 0. Without the two source
    entries it is the no-source control (w_ij = lam * y_ij), usable in a `PairwiseModel`. The
    result is the (weighted) mean of the per-anchor losses.

    The constructor checks the options once, as a `SoftContrastiveOptions` (the `options`
    attribute; each option is also an attribute of its own); `get_config` returns them as plain
    keyword arguments. `SoftContrastiveLoss.from_options(options)` builds the loss from a
    `SoftContrastiveOptions`.

    Args:
        sigma, delta, margin, relative_distance, label_mix, intra_modal_weight, form,
        temperature, source_temperature, label_weights, calibration, trust,
        trust_temperature: as in `soft_contrastive`.
        reduction, name, dtype: as in `keras.losses.Loss`.
    """

    def __init__(self, sigma=1.0, delta=1.5, margin="relaxed", relative_distance=True,
                 label_mix=0.75, intra_modal_weight=0.0, form="margin", temperature=0.1,
                 source_temperature=0.1, label_weights="relaxed", calibration="none",
                 trust="global", trust_temperature=0.1, reduction="sum_over_batch_size",
                 name="soft_contrastive", dtype=None):
        options = SoftContrastiveOptions.from_arguments(locals())
        super().__init__(_soft_contrastive_from_dict, reduction=reduction, name=name,
                         dtype=dtype, **options.to_dict())
        self.options = options

    @classmethod
    def from_options(cls, options, reduction="sum_over_batch_size", name="soft_contrastive",
                     dtype=None):
        """The loss of a `SoftContrastiveOptions` (e.g. a config's), with the `Loss` args."""
        if not isinstance(options, SoftContrastiveOptions):
            raise TypeError(f"options must be a SoftContrastiveOptions; received "
                            f"{type(options).__name__}")
        return cls(**options.to_dict(), reduction=reduction, name=name, dtype=dtype)

    def call(self, y_true, y_pred):
        return self.fn(self.labels_of(y_true), y_pred, self.options)
