"""`HubTower`: a keras-hub backbone, pooled to one vector per input, under the method's head."""

import keras

from keras_cmr.encoders import _hub
from keras_cmr.encoders._hub import keras_hub
from keras_cmr.layers import ProjectionTower


@keras.saving.register_keras_serializable(package="keras_cmr")
class HubTower(keras.layers.Layer):
    """Base of `ImageTower` and `TextTower`: backbone -> pooling -> `ProjectionTower`.

    A subclass sets `POOLINGS` and implements `_resolve_pooling`, `_features` (the pooled
    backbone output of a preprocessed batch), `_is_raw` and `preprocess`. Raw inputs (uint8
    images, lists of strings) given to an eager call are preprocessed first, so that
    `CrossModalEncoder.encode_image / encode_text` take them as they come; a compiled train
    step only ever sees the preprocessed arrays (see `RawPairBatches`).

    With `freeze_backbone=True` the backbone is not trainable and always runs in inference
    mode (no dropout); with False it is fine-tuned with the head. Only the head
    (`ProjectionTower`: hidden layers, projection, dropout, L2 normalisation) is new.
    """

    POOLINGS = ()
    # The constructor argument taking the preset's preprocessing layer, and its loader.
    PRESET_PREPROCESSING = None
    PRESET_PREPROCESSING_LOADER = None

    def __init__(self, backbone, embedding_dim=256, hidden_dims=(256,), activation="gelu",
                 dropout=0.1, normalize=True, freeze_backbone=True, pooling="auto", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(backbone, keras.Model):
            raise TypeError(f"{type(self).__name__} takes a keras-hub backbone (a keras.Model), "
                            f"got {type(backbone).__name__}.")
        if pooling != "auto" and pooling not in self.POOLINGS:
            raise ValueError(f"`pooling` must be 'auto' or one of {self.POOLINGS}, got "
                             f"{pooling!r}.")
        self.backbone = backbone
        self.backbone.trainable = not bool(freeze_backbone)
        self.pooling = self._resolve_pooling(pooling)
        self.head = ProjectionTower(embedding_dim, hidden_dims=hidden_dims,
                                    activation=activation, dropout=dropout,
                                    normalize=normalize, dtype=self.dtype_policy, name="head")

    @classmethod
    def from_preset(cls, preset, embedding_dim=256, load_weights=True, **kwargs):
        """The tower on a preset's backbone, with the preset's preprocessing layer.

        Args:
            preset: a keras-hub preset folder (or, with network access, a preset name or
                handle): a backbone preset of the tower's modality (ViT, BERT, ...) or a CLIP
                preset, whose encoder of that modality is used.
            embedding_dim: width of the shared embedding space.
            load_weights: load the preset's weights (False: random initialisation).
            **kwargs: the constructor's other arguments; the preprocessing argument
                (`image_converter=`, `tokenizer=`) overrides the preset's.
        """
        backbone = _hub.load_backbone(preset, load_weights=load_weights)
        if cls.PRESET_PREPROCESSING not in kwargs:
            kwargs[cls.PRESET_PREPROCESSING] = cls.PRESET_PREPROCESSING_LOADER(preset)
        return cls(backbone, embedding_dim=embedding_dim, **kwargs)

    # --- what subclasses provide -------------------------------------------------------------

    def _resolve_pooling(self, pooling):
        raise NotImplementedError

    def _features(self, inputs, training):
        raise NotImplementedError

    def _is_raw(self, inputs):
        raise NotImplementedError

    def preprocess(self, raw):
        raise NotImplementedError

    # --- the layer ---------------------------------------------------------------------------

    @property
    def embedding_dim(self):
        return self.head.output_dim

    @property
    def freeze_backbone(self):
        """Whether the backbone is frozen (its current `trainable` flag, negated)."""
        return not self.backbone.trainable

    @property
    def feature_dim(self):
        """Width of the pooled backbone output that enters the head."""
        return int(self._backbone_output_spec().shape[-1])

    def _backbone_output_spec(self, pooling=None):
        """The backbone's symbolic output that the pooling reads (before `self.pooling` is set,
        give `pooling`)."""
        return self._sequence_or_pooled(self.backbone.output, pooling)

    def _sequence_or_pooled(self, outputs, pooling=None):
        if isinstance(outputs, dict):
            pooling = pooling or self.pooling
            return outputs["pooled_output" if pooling == "pooled" else "sequence_output"]
        return outputs

    def _track_preprocessing(self, layer):
        """Marks a preprocessing layer (tokenizer, image converter) and its sublayers built.

        They hold no weights, and Keras' JAX trainer runs a whole eager forward pass before
        `predict` (and a symbolic one before `fit`) while any layer of the model is unbuilt.
        """
        if layer is not None:
            for sublayer in layer._flatten_layers(include_self=True):
                sublayer.built = True
        return layer

    def __call__(self, inputs, *args, **kwargs):
        if self._is_raw(inputs):
            inputs = self.preprocess(inputs)
        return super().__call__(inputs, *args, **kwargs)

    def build(self, input_shape):
        if not self.head.built:
            self.head.build((None, self.feature_dim))

    def call(self, inputs, training=None):
        # A frozen backbone runs in inference mode, as in Keras' transfer-learning guide.
        features = self._features(inputs, training if self.backbone.trainable else False)
        return self.head(features, training=training)

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, dict):
            input_shape = input_shape["token_ids"]
        return (tuple(input_shape)[0], self.embedding_dim)

    # --- serialization -----------------------------------------------------------------------

    def get_config(self):
        return {
            **super().get_config(),
            "backbone": keras.layers.serialize(self.backbone),
            "embedding_dim": self.head.output_dim,
            "hidden_dims": list(self.head.hidden_dims),
            "activation": self.head.activation,
            "dropout": self.head.dropout,
            "normalize": self.head.normalize,
            "freeze_backbone": self.freeze_backbone,
            "pooling": self.pooling,
        }

    @classmethod
    def from_config(cls, config):
        keras_hub()  # registers the keras-hub classes the config names
        config = dict(config)
        for key in ("backbone", "tokenizer", "image_converter"):
            if config.get(key) is not None:
                config[key] = keras.layers.deserialize(config[key])
        return cls(**config)

