"""Both towers from one two-tower preset (CLIP): the backbone is read once."""

from keras_cmr.encoders import _hub
from keras_cmr.encoders.image_tower import ImageTower
from keras_cmr.encoders.text_tower import TextTower


def clip_towers(preset, embedding_dim=256, hidden_dims=(256,), dropout=0.1,
                freeze_backbone=True, sequence_length=None, load_weights=True):
    """(image tower, text tower) on the two encoders of one CLIP preset.

    CLIP's own projections (`vision_projection`, `text_projection`) are not used: each
    tower's `ProjectionTower` head maps the pooled encoder output into the shared space.

    Example:

    ```python
    encoder = CrossModalEncoder(*clip_towers("./clip_preset", embedding_dim=256))
    ```

    Args:
        preset: a keras-hub CLIP preset folder (or, with network access, a preset name or
            handle) with its tokenizer and image converter.
        embedding_dim, hidden_dims, dropout: those of both towers' heads.
        freeze_backbone: True (both encoders frozen), False (both fine-tuned), or a pair
            `(image, text)`.
        sequence_length: length of the packed token ids (default: the text encoder's, at
            most 77).
        load_weights: load the preset's weights (False: random initialisation).

    Raises:
        ValueError: the preset's backbone has no vision and text encoder.
    """
    backbone = _hub.load_backbone(preset, load_weights=load_weights)
    if not _hub.is_two_tower_backbone(backbone):
        raise ValueError(f"{preset!r} holds a {type(backbone).__name__}, not a two-tower "
                         "(CLIP) backbone; use ImageTower.from_preset and "
                         "TextTower.from_preset with one preset per modality.")
    freeze_image, freeze_text = (freeze_backbone if isinstance(freeze_backbone, (tuple, list))
                                 else (freeze_backbone, freeze_backbone))
    head = {"embedding_dim": embedding_dim, "hidden_dims": hidden_dims, "dropout": dropout}
    image_tower = ImageTower(backbone.vision_encoder,
                             image_converter=_hub.load_image_converter(preset),
                             freeze_backbone=freeze_image, name="image_tower", **head)
    text_tower = TextTower(backbone.text_encoder, tokenizer=_hub.load_tokenizer(preset),
                           sequence_length=sequence_length, freeze_backbone=freeze_text,
                           name="text_tower", **head)
    return image_tower, text_tower
