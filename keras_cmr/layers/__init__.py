"""Layers: the projection tower, the class-wise heads shared by both modalities, the soft
contrastive loss as a layer for functional models, and initializers and dropout that draw the
same numbers on every backend."""

from keras_cmr.layers.class_heads import CosineClassifier, PrototypeClassifier
from keras_cmr.layers.portable import (
    PortableDropout,
    PortableGlorotUniform,
    PortableRandomNormal,
)
from keras_cmr.layers.projection import L2Normalize, ProjectionTower, l2_normalize
from keras_cmr.layers.soft_contrastive_loss import SoftContrastiveLossLayer

__all__ = ["CosineClassifier", "L2Normalize", "PortableDropout", "PortableGlorotUniform",
           "PortableRandomNormal", "PrototypeClassifier", "ProjectionTower",
           "SoftContrastiveLossLayer", "l2_normalize"]
