"""Layers: the projection tower and the class-wise heads shared by both modalities."""

from keras_cmr.layers.class_heads import CosineClassifier, PrototypeClassifier
from keras_cmr.layers.projection import L2Normalize, ProjectionTower, l2_normalize

__all__ = ["CosineClassifier", "L2Normalize", "PrototypeClassifier", "ProjectionTower",
           "l2_normalize"]
