"""`TextTower`: a keras-hub text backbone (CLIP text encoder, BERT, ...) as a text tower."""

import keras
import numpy as np
from keras import ops

from keras_cmr.encoders import _hub
from keras_cmr.encoders.base import HubTower

TEXT_INPUTS = ("token_ids", "padding_mask", "segment_ids")
DEFAULT_SEQUENCE_LENGTH = 77  # CLIP's context length


@keras.saving.register_keras_serializable(package="keras_cmr")
class TextTower(HubTower):
    """Captions -> keras-hub text backbone -> pooled vector -> L2-normalised embedding.

    The tower takes token ids, an int array `(batch, sequence_length)` padded with
    `pad_token_id`: one array per batch, so `CrossModalEncoder` slices and checks it like any
    feature matrix. The backbone's other inputs are derived in the graph: `padding_mask` =
    `token_ids != pad_token_id`, `segment_ids` = 0. A dict `{"token_ids", "padding_mask"}` (a
    keras-hub preprocessor's output) is accepted too when the tower is called directly.
    `preprocess` makes the ids from a list of strings with the preset's tokenizer (CLIP's BPE,
    BERT's WordPiece) and packs them `[start] tokens [end] pad...`, as keras-hub's
    preprocessors do. Calling the tower eagerly on a list of strings preprocesses it first, so
    `encoder.encode_text(captions)` works; training goes through `RawPairBatches`.

    Args:
        backbone: a keras-hub text backbone taking "token_ids" (and optionally "padding_mask",
            "segment_ids"): `CLIPTextEncoder`, `BertBackbone`, ... A `CLIPBackbone` gives its
            text encoder.
        embedding_dim: width of the shared embedding space.
        tokenizer: a keras-hub `Tokenizer` used by `preprocess`, or None (token ids only).
        sequence_length: length of the packed ids; default: the backbone's
            `max_sequence_length`, at most 77.
        pad_token_id: id of padding; default: the tokenizer's, else 0.
        hidden_dims, activation, dropout, normalize: those of the `ProjectionTower` head.
        freeze_backbone: True keeps the backbone's weights fixed (and in inference mode);
            False fine-tunes it with the head.
        pooling: "eos" (the hidden state at the end token, found as the largest id as in
            keras-hub's `CLIPTextPooler`: CLIP), "pooled" (the backbone's "pooled_output":
            BERT's [CLS] dense), "cls" (the first token's state), "mean" (average over
            non-padding tokens), or "auto" (the backbone's own: "pooled" when it has a pooled
            output, "eos" for CLIP, else "mean").
    """

    PRESET_PREPROCESSING = "tokenizer"
    PRESET_PREPROCESSING_LOADER = staticmethod(_hub.load_tokenizer)
    POOLINGS = ("eos", "pooled", "cls", "mean")

    def __init__(self, backbone, embedding_dim=256, tokenizer=None, sequence_length=None,
                 pad_token_id=None, hidden_dims=(256,), activation="gelu", dropout=0.1,
                 normalize=True, freeze_backbone=True, pooling="auto", **kwargs):
        if _hub.is_two_tower_backbone(backbone):
            backbone = backbone.text_encoder
        super().__init__(backbone, embedding_dim=embedding_dim, hidden_dims=hidden_dims,
                         activation=activation, dropout=dropout, normalize=normalize,
                         freeze_backbone=freeze_backbone, pooling=pooling, **kwargs)
        inputs = backbone.input
        self._input_names = sorted(inputs) if isinstance(inputs, dict) else None
        names = self._input_names or ["token_ids"]
        if "token_ids" not in names or not set(names) <= set(TEXT_INPUTS):
            raise ValueError(f"TextTower needs a backbone taking 'token_ids' (and optionally "
                             f"'padding_mask', 'segment_ids'), got {type(backbone).__name__} "
                             f"taking {names}.")
        self.tokenizer = self._track_preprocessing(tokenizer)
        self.max_sequence_length = getattr(backbone, "max_sequence_length", None)
        if sequence_length is None:
            sequence_length = min(self.max_sequence_length or DEFAULT_SEQUENCE_LENGTH,
                                  DEFAULT_SEQUENCE_LENGTH)
        if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or \
                sequence_length < 2:
            raise ValueError(f"`sequence_length` must be an integer >= 2, got "
                             f"{sequence_length!r}.")
        if self.max_sequence_length is not None and sequence_length > self.max_sequence_length:
            raise ValueError(f"`sequence_length`={sequence_length} exceeds the backbone's "
                             f"max_sequence_length={self.max_sequence_length}.")
        self.sequence_length = sequence_length
        if pad_token_id is None:
            pad_token_id = getattr(tokenizer, "pad_token_id", None)
        self.pad_token_id = 0 if pad_token_id is None else int(pad_token_id)

    def _resolve_pooling(self, pooling):
        outputs = self.backbone.output
        has_pooled = isinstance(outputs, dict) and "pooled_output" in outputs
        if pooling == "auto":
            if has_pooled:
                pooling = "pooled"
            elif type(self.backbone).__name__ == "CLIPTextEncoder":
                pooling = "eos"
            else:
                pooling = "mean"
        if pooling == "pooled" and not has_pooled:
            raise ValueError(f"pooling='pooled' needs a backbone with a 'pooled_output'; "
                             f"{type(self.backbone).__name__} has none.")
        return pooling

    def _is_raw(self, inputs):
        return isinstance(inputs, (str, bytes, list, tuple)) or (
            isinstance(inputs, np.ndarray) and inputs.dtype.kind in "USO")

    def preprocess(self, captions):
        """A list of strings -> int32 token ids `(n, sequence_length)`, `[start] ... [end] pad`."""
        captions = _caption_list(captions)
        if self.tokenizer is None:
            raise ValueError("this TextTower has no tokenizer: give it token ids "
                             f"(n, {self.sequence_length}), or build it with tokenizer=... "
                             "(TextTower.from_preset loads the preset's).")
        packed = np.full((len(captions), self.sequence_length), self.pad_token_id, np.int32)
        if not captions:
            return packed
        start = getattr(self.tokenizer, "start_token_id", None)
        end = getattr(self.tokenizer, "end_token_id", None)
        room = self.sequence_length - (start is not None) - (end is not None)
        for row, ids in enumerate(_token_lists(self.tokenizer(captions))):
            sequence = ([start] if start is not None else []) + ids[:room] + (
                [end] if end is not None else [])
            packed[row, :len(sequence)] = sequence
        return packed

    def _features(self, inputs, training):
        mask = None
        if isinstance(inputs, dict):
            token_ids, mask = inputs["token_ids"], inputs.get("padding_mask")
        else:
            token_ids = inputs
        self._check_shape(token_ids)
        token_ids = ops.cast(token_ids, "int32")
        mask = ops.not_equal(token_ids, self.pad_token_id) if mask is None else ops.cast(
            mask, "bool")
        if self._input_names is None:
            backbone_inputs = token_ids
        else:
            given = {"token_ids": token_ids, "padding_mask": ops.cast(mask, "int32"),
                     "segment_ids": ops.zeros_like(token_ids)}
            backbone_inputs = {name: given[name] for name in self._input_names}
        outputs = self._sequence_or_pooled(self.backbone(backbone_inputs, training=training))
        if self.pooling == "pooled":
            return outputs
        if self.pooling == "cls":
            return outputs[:, 0, :]
        if self.pooling == "eos":  # keras-hub's CLIPTextPooler: the end token has the top id
            index = ops.expand_dims(ops.expand_dims(ops.argmax(token_ids, axis=-1), -1), -1)
            return ops.squeeze(ops.take_along_axis(outputs, index, axis=1), axis=1)
        weights = ops.expand_dims(ops.cast(mask, outputs.dtype), -1)
        return ops.sum(outputs * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)

    def _check_shape(self, token_ids):
        shape = tuple(token_ids.shape)
        if len(shape) != 2:
            raise ValueError(f"the text tower takes token ids (batch, sequence_length), got "
                             f"shape {shape}; tower.preprocess(list_of_strings) makes them.")
        if (self.max_sequence_length is not None and shape[1] is not None
                and shape[1] > self.max_sequence_length):
            raise ValueError(f"the text backbone takes at most {self.max_sequence_length} "
                             f"tokens, got {shape[1]}.")

    def get_config(self):
        tokenizer = self.tokenizer
        return {**super().get_config(),
                "tokenizer": None if tokenizer is None else keras.layers.serialize(tokenizer),
                "sequence_length": self.sequence_length,
                "pad_token_id": self.pad_token_id}


def _caption_list(captions):
    if isinstance(captions, (str, bytes)):
        raise TypeError("captions must be a list of strings, one per pair, got a single "
                        "string; wrap it in a list.")
    if isinstance(captions, np.ndarray):
        if captions.ndim != 1:
            raise ValueError(f"captions must be a 1-D list of strings, got an array of shape "
                             f"{captions.shape}.")
        captions = captions.tolist()
    if not isinstance(captions, (list, tuple)):
        raise TypeError(f"captions must be a list of strings, got {type(captions).__name__}.")
    for row, caption in enumerate(captions):
        if not isinstance(caption, str):
            raise TypeError(f"caption {row} is a {type(caption).__name__}, not a string.")
    return list(captions)


def _token_lists(tokens):
    """A tokenizer's batch output (lists, a ragged or dense tensor) as lists of ints."""
    if hasattr(tokens, "to_list"):  # tf.RaggedTensor
        tokens = tokens.to_list()
    elif not isinstance(tokens, list):
        tokens = ops.convert_to_numpy(tokens).tolist()
    return [[int(token) for token in row] for row in tokens]
