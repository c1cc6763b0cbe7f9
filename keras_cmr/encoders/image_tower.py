"""`ImageTower`: a keras-hub vision backbone (CLIP vision encoder, ViT, ...) as an image tower."""

import keras
import numpy as np
from keras import ops

from keras_cmr.encoders import _hub
from keras_cmr.encoders.base import HubTower


@keras.saving.register_keras_serializable(package="keras_cmr")
class ImageTower(HubTower):
    """Images -> keras-hub vision backbone -> pooled vector -> L2-normalised embedding.

    The tower takes preprocessed images, float `(batch, S, S, 3)` at the backbone's input size
    `image_shape`; `preprocess` makes them from raw images of any size with the preset's image
    converter (resize, rescale, normalise). Calling the tower eagerly on a numpy array of
    integers (raw uint8 images) preprocesses it first, so `encoder.encode_image(uint8_images)`
    works; training goes through `RawPairBatches`, which preprocesses outside the train step.

    Example:

    ```python
    image_tower = ImageTower.from_preset("./clip_preset", embedding_dim=256)
    text_tower = TextTower.from_preset("./clip_preset", embedding_dim=256)
    encoder = keras_cmr.models.CrossModalEncoder(image_tower, text_tower)
    ```

    Args:
        backbone: a keras-hub vision backbone taking "images": `CLIPVisionEncoder`,
            `ViTBackbone`, or any backbone whose output is `(batch, tokens, width)` or a
            feature map `(batch, h, w, width)`. A `CLIPBackbone` gives its vision encoder.
        embedding_dim: width of the shared embedding space.
        image_converter: a keras-hub `ImageConverter` used by `preprocess`, or None (then
            `preprocess` only casts, and images must already have the backbone's size).
        hidden_dims, activation, dropout, normalize: those of the `ProjectionTower` head.
        freeze_backbone: True keeps the backbone's weights fixed (and in inference mode);
            False fine-tunes it with the head.
        pooling: "cls" (the class token: CLIP, ViT with a class token), "mean" (average of the
            tokens or of the feature map), or "auto" (the backbone's own: "cls" when it has a
            class token, else "mean").
    """

    PRESET_PREPROCESSING = "image_converter"
    PRESET_PREPROCESSING_LOADER = staticmethod(_hub.load_image_converter)
    POOLINGS = ("cls", "mean")

    def __init__(self, backbone, embedding_dim=256, image_converter=None, hidden_dims=(256,),
                 activation="gelu", dropout=0.1, normalize=True, freeze_backbone=True,
                 pooling="auto", **kwargs):
        if _hub.is_two_tower_backbone(backbone):
            backbone = backbone.vision_encoder
        super().__init__(backbone, embedding_dim=embedding_dim, hidden_dims=hidden_dims,
                         activation=activation, dropout=dropout, normalize=normalize,
                         freeze_backbone=freeze_backbone, pooling=pooling, **kwargs)
        self.image_converter = self._track_preprocessing(image_converter)
        self.image_shape = tuple(self._image_input().shape[1:])

    def _image_input(self):
        inputs = self.backbone.input
        if isinstance(inputs, dict):
            if "images" not in inputs:
                raise ValueError(f"ImageTower needs a backbone taking 'images', got "
                                 f"{type(self.backbone).__name__} taking {sorted(inputs)}.")
            return inputs["images"]
        return inputs

    def _resolve_pooling(self, pooling):
        rank = len(self._backbone_output_spec("mean").shape)
        if rank not in (3, 4):
            raise ValueError(f"ImageTower needs a backbone output of rank 3 (batch, tokens, "
                             f"width) or 4 (feature map), got rank {rank} from "
                             f"{type(self.backbone).__name__}.")
        if pooling == "auto":
            has_class_token = (type(self.backbone).__name__ == "CLIPVisionEncoder"
                               or getattr(self.backbone, "use_class_token", False))
            pooling = "cls" if has_class_token and rank == 3 else "mean"
        if pooling == "cls" and rank != 3:
            raise ValueError("pooling='cls' needs a token sequence; "
                             f"{type(self.backbone).__name__} gives a feature map.")
        return pooling

    def _is_raw(self, inputs):
        return isinstance(inputs, np.ndarray) and inputs.dtype.kind in "ui"

    def preprocess(self, images):
        """Raw images `(n, H, W, 3)` (uint8, any size) -> float32 `(n, *image_shape)`."""
        images = np.asarray(images)
        if images.dtype.kind not in "uif":
            raise TypeError(f"images must be a numeric array (n, height, width, channels), "
                            f"got dtype {images.dtype}.")
        if images.ndim != 4:
            raise ValueError(f"images must be a batch (n, height, width, channels), got shape "
                             f"{images.shape}.")
        if self.image_converter is not None and len(images):
            images = ops.convert_to_numpy(self.image_converter(images))
        images = np.asarray(images, dtype=np.float32)
        if images.shape[1:] != self.image_shape:
            raise ValueError(
                f"the image tower's backbone takes images of shape {self.image_shape}, got "
                f"{images.shape[1:]}" + ("" if self.image_converter is not None else
                                         " (this tower has no image converter to resize them)"))
        return images

    def _check_shape(self, images):
        shape = tuple(images.shape)
        if len(shape) != 4 or any(expected is not None and got is not None and got != expected
                                  for got, expected in zip(shape[1:], self.image_shape)):
            expected = ", ".join(map(str, self.image_shape))
            raise ValueError(
                f"the image tower takes preprocessed images (batch, {expected}), got shape "
                f"{shape}; tower.preprocess(uint8_images) resizes and normalises raw images.")

    def _features(self, images, training):
        self._check_shape(images)
        inputs = {"images": images} if isinstance(self.backbone.input, dict) else images
        outputs = self._sequence_or_pooled(self.backbone(inputs, training=training))
        if self.pooling == "cls":
            return outputs[:, 0, :]
        return ops.mean(outputs, axis=tuple(range(1, len(outputs.shape) - 1)))

    def get_config(self):
        converter = self.image_converter
        return {**super().get_config(),
                "image_converter": None if converter is None else keras.layers.serialize(converter)}
