"""The projection tower: an MLP head from a modality's features into the shared space."""

import keras

from keras_cmr.layers.portable import PortableDropout, PortableGlorotUniform
from keras_cmr.utils.arrays import l2_normalize
from keras_cmr.utils.checks import check_positive_int


@keras.saving.register_keras_serializable(package="keras_cmr")
class L2Normalize(keras.layers.Layer):
    """Projects each vector onto the unit sphere along `axis`."""

    def __init__(self, axis=-1, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.epsilon = epsilon

    def call(self, inputs):
        return l2_normalize(inputs, axis=self.axis, epsilon=self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="keras_cmr")
class ProjectionTower(keras.layers.Layer):
    """One modality's tower: features -> L2-normalised embedding.

    The default is the CLIP4CMR head: `Dense(256) -> GELU -> Dense(output_dim) ->
    Dropout(0.1) -> L2 normalise`. `hidden_dims=()` gives a single linear projection. Kernels
    and dropout masks are drawn by `layers.portable`, the same on every backend.

    Args:
        output_dim: width of the shared embedding space.
        hidden_dims: widths of the hidden layers, each followed by `activation`.
        activation: activation of the hidden layers.
        dropout: dropout rate applied to the projected embedding before normalisation.
        normalize: whether to L2-normalise the output (cosine geometry of the method).
        input_dropout: dropout rate applied to the input features (0: none, the default).
    """

    def __init__(self, output_dim, hidden_dims=(256,), activation="gelu", dropout=0.1,
                 normalize=True, input_dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        output_dim = check_positive_int(output_dim, "`output_dim`")
        hidden_dims = tuple(check_positive_int(width, "`hidden_dims`") for width in hidden_dims)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout!r}.")
        if not 0.0 <= float(input_dropout) < 1.0:
            raise ValueError(f"`input_dropout` must be in [0, 1), got {input_dropout!r}.")
        self.output_dim = int(output_dim)
        self.hidden_dims = tuple(int(width) for width in hidden_dims)
        self.activation = activation
        self.dropout = float(dropout)
        self.normalize = bool(normalize)
        self.input_dropout = float(input_dropout)
        self.hidden_layers = [
            keras.layers.Dense(width, activation=activation,
                               kernel_initializer=PortableGlorotUniform(),
                               dtype=self.dtype_policy, name=f"hidden_{index}")
            for index, width in enumerate(self.hidden_dims)
        ]
        self.output_layer = keras.layers.Dense(self.output_dim,
                                               kernel_initializer=PortableGlorotUniform(),
                                               dtype=self.dtype_policy, name="projection")
        self.dropout_layer = PortableDropout(self.dropout, dtype=self.dtype_policy)
        self.input_dropout_layer = PortableDropout(self.input_dropout,
                                                   dtype=self.dtype_policy)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.hidden_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.output_layer.build(shape)

    def call(self, inputs, training=None):
        x = self.input_dropout_layer(inputs, training=training)
        for layer in self.hidden_layers:
            x = layer(x)
        x = self.dropout_layer(self.output_layer(x), training=training)
        return l2_normalize(x) if self.normalize else x

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.output_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "output_dim": self.output_dim,
            "hidden_dims": list(self.hidden_dims),
            "activation": self.activation,
            "dropout": self.dropout,
            "normalize": self.normalize,
            "input_dropout": self.input_dropout,
        }
