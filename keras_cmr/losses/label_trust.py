"""Selective transfer: how far each pair's hard label is trusted, from the source's agreement.

With trust="global" every pair of the soft contrastive loss mixes its hard label similarity
y_ij and the source's relaxed label r_ij with one weight, w_ij = lam * y_ij + (1 - lam) * r_ij.
With trust="agreement" (`SoftContrastiveOptions.trust`) pair (i, j) mixes with

    lam_ij = lam * T_ij,    T_ij = a_i * a_j (i != j),    T_ii = 1,

where a_i in (0, 1] is the source's agreement with pair i's training label
(`label_agreement`): pairs whose label the source disputes lean on its relaxed label. This is
our own design, not the MET paper's (its abstract names "consistent and selective learning
processes" and says no more); see docs/results.md for what it measured. The choices it rests
on, each ours:

- the agreement is a class-wise score on the training split only (no clean label, no
  validation or test pair): cosines of the pair's source embeddings to the class means of the
  source embeddings of the training pairs under their (possibly noisy) labels, the mean of the
  pair's own class leaving the pair out, so that its label does not vote for itself;
- a_i is the soft-max of those scores divided by its maximum (the "row" calibration of the
  relaxed labels): 1 when the label's class is the source's nearest, so trust="agreement"
  changes only the pairs the source disputes, and 1 everywhere as the temperature grows (the
  global trust is its limit);
- the product a_i * a_j reads the agreements as the chances that each label is right,
  independently; y_ij is right when both are (a symmetric rule, 0 when either label is
  fully disputed);
- the diagonal keeps the full weight: y_ii = 1 whatever pair i's (non-empty) label is, so
  noise cannot make a pair unlike itself.

The agreement is computed once per training set (`TransferModel.with_label_trust`), from the
source embeddings the transfer learns from: with out-of-fold sources
(`TrainingConfig.source_folds` > 1) every pair's agreement comes from a source that never
trained on it, whereas a source trained on every pair has fitted its labels, noisy ones
included, and so disputes fewer of them (our expectation; measured only with out-of-fold
sources).

Measured on Wikipedia at 40% and 80% symmetric noise (docs/results.md, "Selective label
trust"): no temperature beat the global trust on validation, and on test it tied MET, so
trust="global" stays the default.
"""

from keras import ops

from keras_cmr.losses.distances import EPSILON, l2_normalize, safe_sqrt, to_float32
from keras_cmr.losses.inputs import check_rank, check_same_size
from keras_cmr.losses.labels import label_vectors
from keras_cmr.options.checks import check_number, check_positive


def _class_count(labels):
    labels = ops.convert_to_tensor(labels)
    if len(labels.shape) == 2 and labels.shape[-1] != 1:
        return labels.shape[-1]
    return int(ops.convert_to_numpy(ops.max(labels))) + 1


def class_scores(source_image_embeddings, source_text_embeddings, labels, num_classes=None):
    """(n, C) scores g_ic = 0.5 * (cos(s_i, mu_c^-i) + cos(t_i, mu_c^-i)).

    mu_c^-i is the sum of s_k + t_k (L2-normalised source embeddings) over the pairs k != i
    whose labels hold class c (class indices, or multi-hot members); a class with no such pair
    scores 0.

    Args:
        source_image_embeddings: (n, F) source image embeddings s_i.
        source_text_embeddings: (n, F) source text embeddings t_i.
        labels: (n,) class indices or (n, C) multi-hot.
        num_classes: C for class indices (default: the largest index + 1, read eagerly).
    """
    s, t = (ops.stop_gradient(l2_normalize(to_float32(x)))
            for x in (source_image_embeddings, source_text_embeddings))
    if num_classes is None:
        num_classes = _class_count(labels)
    members = label_vectors(labels, num_classes)  # (n, C) in {0, 1}
    pair = s + t
    sums = ops.matmul(ops.transpose(members), pair)  # (C, F)
    # Leaving pair i out of the classes it belongs to: sums_c - h_ic (s_i + t_i).
    pair_dot_sums = ops.matmul(pair, ops.transpose(sums))
    pair_norm = ops.sum(ops.square(pair), axis=-1, keepdims=True)
    dots = pair_dot_sums - members * pair_norm
    squared_norms = (ops.sum(ops.square(sums), axis=-1)[None, :] - 2.0 * members * pair_dot_sums
                     + members * pair_norm)
    counts = ops.sum(members, axis=0, keepdims=True)
    empty = (counts - members) < 0.5  # no other pair holds class c
    norms = safe_sqrt(ops.maximum(squared_norms, 0.0))
    scores = 0.5 * dots / ops.maximum(norms, EPSILON)
    return ops.where(empty | (norms <= 0.0), 0.0, scores)


def label_agreement(source_image_embeddings, source_text_embeddings, labels, *,
                    temperature=0.1, num_classes=None):
    """The source's agreement a_i with each pair's label, in (0, 1] (0 for no label).

        a_i = mean over the classes c of pair i's label of exp((g_ic - max_k g_ik) / temperature)

    with g the `class_scores` (the soft-max over classes divided by its maximum; class
    indices: one class per pair). a_i = 1 when the label's class scores highest.

    Args:
        source_image_embeddings: (n, F) source image embeddings s_i of the training pairs.
        source_text_embeddings: (n, F) source text embeddings t_i.
        labels: (n,) class indices or (n, C) multi-hot, the training labels.
        temperature: > 0; small: only the source's top class is trusted; large: every label.
        num_classes: as in `class_scores`.

    Returns:
        float32 tensor of shape (n,).
    """
    check_number("temperature", temperature, "> 0")
    check_positive("temperature", temperature)
    scores = class_scores(source_image_embeddings, source_text_embeddings, labels,
                          num_classes)
    members = label_vectors(labels, scores.shape[-1])
    relative = ops.exp((scores - ops.max(scores, axis=-1, keepdims=True)) / temperature)
    return (ops.sum(members * relative, axis=-1)
            / ops.maximum(ops.sum(members, axis=-1), 1.0))


def pair_trust(label_trust):
    """(n, n) trust T_ij = a_i * a_j of the pairs of a batch, with T_ii = 1."""
    a = to_float32(label_trust)
    index = ops.arange(ops.shape(a)[0])
    diagonal = ops.equal(index[:, None], index[None, :])
    return ops.where(diagonal, 1.0, a[:, None] * a[None, :])


def trusted_label_mix(options, label_trust):
    """The weight of the hard labels: `options.label_mix` (a float: trust="global", or
    label_mix = 0), else the (n, n) matrix label_mix * `pair_trust(label_trust)`."""
    if options.trust == "global" or options.label_mix == 0:
        return options.label_mix
    return options.label_mix * pair_trust(label_trust)


def check_label_trust(label_trust, options, named):
    """`label_trust` as a float32 (n,) tensor with trust="agreement" (None with "global").

    Raises ValueError when trust="agreement" has no `label_trust`, when trust="global" is
    given one (it would be ignored), or when its length differs from that of the tensors of
    `named` (name -> tensor; static shapes only; the values are checked where they enter,
    `TransferModel`).
    """
    if options.trust == "global":
        if label_trust is not None:
            raise ValueError('label_trust was given, but trust="global" does not use it; set '
                             'trust="agreement" or leave label_trust out')
        return None
    if label_trust is None:
        raise ValueError('trust="agreement" needs label_trust, the source\'s agreement a_i '
                         "with each pair's label (one value per pair in [0, 1]: "
                         "`label_agreement`, `TransferModel.with_label_trust`)")
    label_trust = to_float32(label_trust)
    check_rank("label_trust", label_trust, 1)
    check_same_size({"label_trust": label_trust, **named})
    return label_trust
