"""Class-wise heads shared by both modalities: they map an embedding to per-class scores."""

import keras
from keras import ops

from keras_cmr.layers.portable import PortableGlorotUniform, PortableRandomNormal
from keras_cmr.utils.arrays import l2_normalize, unit_rows


@keras.saving.register_keras_serializable(package="keras_cmr")
class CosineClassifier(keras.layers.Layer):
    """Normalised-softmax classifier: logits = scale * cos(embedding, w_c).

    One weight matrix serves the image and the text tower, so both modalities are pulled to
    the same class directions. CLIP4CMR uses scale 1, which learns poorly; 16 is the default.

    Args:
        num_classes: number of classes C.
        scale: the logit scale s.
    """

    def __init__(self, num_classes, scale=16.0, **kwargs):
        super().__init__(**kwargs)
        if int(num_classes) < 2:
            raise ValueError(f"`num_classes` must be at least 2, got {num_classes!r}.")
        if float(scale) <= 0:
            raise ValueError(f"`scale` must be positive, got {scale!r}.")
        self.num_classes = int(num_classes)
        self.scale = float(scale)

    def build(self, input_shape):
        self.class_weights = self.add_weight(
            name="class_weights", shape=(input_shape[-1], self.num_classes),
            initializer=PortableGlorotUniform(),
        )

    def call(self, embeddings):
        weights = l2_normalize(self.class_weights, axis=0)
        return self.scale * ops.matmul(l2_normalize(embeddings), ops.cast(weights, embeddings.dtype))

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "scale": self.scale}


@keras.saving.register_keras_serializable(package="keras_cmr")
class PrototypeClassifier(keras.layers.Layer):
    """Fixed random class prototypes: logits = -||e - p_c||^2 (prototype contrastive loss).

    The prototypes are L2-normalised Gaussian draws from `seed`, stored as non-trainable
    weights, so a saved model keeps exactly the prototypes it was trained against.

    Args:
        num_classes: number of classes C.
        seed: seed of the prototype draw.
    """

    def __init__(self, num_classes, seed=0, **kwargs):
        super().__init__(**kwargs)
        if int(num_classes) < 2:
            raise ValueError(f"`num_classes` must be at least 2, got {num_classes!r}.")
        self.num_classes = int(num_classes)
        self.seed = int(seed)

    def build(self, input_shape):
        shape = (self.num_classes, input_shape[-1])
        # Normalised on the host, so that every backend starts from the same prototypes.
        prototypes = unit_rows(PortableRandomNormal(seed=self.seed).draw(shape))
        self.prototypes = self.add_weight(
            name="prototypes", shape=shape, trainable=False,
            initializer=lambda shape, dtype=None: ops.convert_to_tensor(prototypes, dtype),
        )

    def call(self, embeddings):
        prototypes = ops.cast(self.prototypes, embeddings.dtype)
        # ||e - p||^2 = ||e||^2 - 2 e.p + ||p||^2, without a (batch, C, E) intermediate.
        squared = (ops.sum(ops.square(embeddings), axis=-1, keepdims=True)
                   - 2.0 * ops.matmul(embeddings, ops.transpose(prototypes))
                   + ops.sum(ops.square(prototypes), axis=-1)[None, :])
        return -ops.maximum(squared, 0.0)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "seed": self.seed}
