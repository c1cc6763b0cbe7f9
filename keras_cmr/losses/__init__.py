"""Losses: class-wise (stage 1), pair-wise baselines, the soft contrastive transfer loss, DSCMR.

Every loss is a function of plain tensors, `fn(<tensors>, labels=..., *, <options>)` (tensors
first, labels by keyword), that returns one float32 value per anchor, shape (batch,), whose
mean is the batch loss, and a registered `keras.losses.Loss` class that the
models call as `loss(y_true=labels, y_pred={...named tensors...})`.
"""

from keras_cmr.losses.class_wise import (
    ClassWiseCrossEntropy,
    GeneralizedCrossEntropy,
    LabelRegressionLoss,
    SymmetricCrossEntropy,
    class_wise_cross_entropy,
    generalized_cross_entropy,
    label_regression,
    prototype_contrastive,
    symmetric_cross_entropy,
)
from keras_cmr.losses.dscmr import DSCMRLoss, dscmr
from keras_cmr.losses.labels import label_similarity
from keras_cmr.losses.mrl import MRLLoss, mrl, multimodal_contrastive, robust_clustering
from keras_cmr.options import SoftContrastiveOptions
from keras_cmr.losses.pair_wise import (
    ContrastiveLoss,
    InfoNCELoss,
    SupervisedInfoNCELoss,
    TripletLoss,
    contrastive,
    infonce,
    supervised_infonce,
    triplet,
)
from keras_cmr.losses.soft_contrastive import SoftContrastiveLoss, soft_contrastive
from keras_cmr.losses.soft_kernels import soft_contrastive_infonce, soft_contrastive_margin
from keras_cmr.losses.soft_labels import (
    SoftLabels,
    relaxed_labels,
    soft_infonce_targets,
    soft_labels,
)

__all__ = [
    "ClassWiseCrossEntropy",
    "ContrastiveLoss",
    "DSCMRLoss",
    "GeneralizedCrossEntropy",
    "InfoNCELoss",
    "LabelRegressionLoss",
    "MRLLoss",
    "SoftContrastiveLoss",
    "SoftContrastiveOptions",
    "SoftLabels",
    "SupervisedInfoNCELoss",
    "SymmetricCrossEntropy",
    "TripletLoss",
    "class_wise_cross_entropy",
    "contrastive",
    "dscmr",
    "generalized_cross_entropy",
    "infonce",
    "label_regression",
    "label_similarity",
    "mrl",
    "multimodal_contrastive",
    "prototype_contrastive",
    "relaxed_labels",
    "robust_clustering",
    "soft_contrastive",
    "soft_contrastive_infonce",
    "soft_contrastive_margin",
    "soft_infonce_targets",
    "soft_labels",
    "supervised_infonce",
    "symmetric_cross_entropy",
    "triplet",
]
