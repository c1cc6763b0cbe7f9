"""The model of a closed-form method (CCA, label regression): an encoder solved, not trained."""

import keras

from keras_cmr.models.encoder import CrossModalTrainer


@keras.saving.register_keras_serializable(package="keras_cmr")
class ClosedFormModel(CrossModalTrainer):
    """Holds the `CrossModalEncoder` a closed-form solver returns (None until it is solved).

    The registered methods "cca" and "label_regression" (`keras_cmr.methods.linear`) build one
    empty and their `fit` hook gives it the solution (`set_encoder`); it then saves and serves
    like any trained model.
    Gradient training does not apply: `model.fit` is refused.
    """

    serialized_children = ("encoder",)

    def __init__(self, encoder=None, **kwargs):
        super().__init__(encoder, **kwargs)

    def set_encoder(self, encoder):
        """Holds the built `encoder` (a solution) and builds this model on its input shapes."""
        build_config = encoder.get_build_config() if encoder.built else None
        if not build_config:
            raise ValueError("set_encoder needs an encoder built on its input shapes.")
        self.encoder = encoder
        self.build(build_config["input_shape"])

    def build(self, input_shape):
        if self.encoder is not None:
            super().build(input_shape)

    def call(self, inputs, training=None):
        if self.encoder is None:
            raise ValueError("this ClosedFormModel holds no encoder yet: solve it first (its "
                             "method's fit, e.g. keras_cmr.experiment.run_method).")
        return super().call(inputs, training=training)

    def fit(self, *args, **kwargs):
        raise ValueError("a ClosedFormModel is solved in closed form, not trained by fit: use "
                         "its registered method's fit (keras_cmr.methods.linear).")
