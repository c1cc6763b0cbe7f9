"""Layers: the projection tower, the class-wise heads shared by both modalities, and the soft
contrastive loss as a layer for functional models."""

from keras_cmr.layers.class_heads import CosineClassifier, PrototypeClassifier
from keras_cmr.layers.projection import L2Normalize, ProjectionTower, l2_normalize
from keras_cmr.layers.soft_contrastive_loss import SoftContrastiveLossLayer

__all__ = ["CosineClassifier", "L2Normalize", "PrototypeClassifier", "ProjectionTower",
           "SoftContrastiveLossLayer", "l2_normalize"]
