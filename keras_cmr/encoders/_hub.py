"""keras-hub access: a lazy import, and the parts of a preset loaded with clear errors.

keras-hub is an optional dependency (`pip install "keras-cmr[hub]"`) and importing it imports
TensorFlow on every backend, so nothing here imports it before it is needed.
"""

import os

# Files of a keras-hub preset folder (keras_hub.src.utils.preset_utils).
BACKBONE_CONFIG = "config.json"
TOKENIZER_CONFIG = "tokenizer.json"
IMAGE_CONVERTER_CONFIG = "image_converter.json"


def keras_hub():
    """The `keras_hub` module; a clear ImportError when it is not installed."""
    try:
        import keras_hub as module
    except ImportError as error:
        raise ImportError(
            "keras_cmr.encoders needs keras-hub (and tensorflow-text for some tokenizers): "
            'pip install "keras-cmr[hub]"'
        ) from error
    return module


def _is_local(preset):
    """Whether `preset` names a folder on this machine rather than a preset name or handle."""
    if "://" in preset:
        return False
    return (os.path.exists(preset) or preset.startswith((".", "~")) or os.sep in preset
            or (os.altsep is not None and os.altsep in preset))


def check_preset(preset):
    """`preset` as a string; a local path must be a keras-hub preset folder.

    Raises:
        TypeError: `preset` is not a string or path.
        FileNotFoundError: a local path that does not exist or has no `config.json`.
    """
    if isinstance(preset, os.PathLike):
        preset = os.fspath(preset)
    if not isinstance(preset, str):
        raise TypeError(f"a preset is a folder path or a keras-hub preset name, got "
                        f"{type(preset).__name__}.")
    if _is_local(preset):
        folder = os.path.expanduser(preset)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"no keras-hub preset folder at {preset!r}.")
        if not os.path.isfile(os.path.join(folder, BACKBONE_CONFIG)):
            raise FileNotFoundError(
                f"{preset!r} is not a keras-hub preset folder: it has no {BACKBONE_CONFIG} "
                "(write one with backbone.save_to_preset(folder)).")
        return folder
    return preset


def _load(what, preset, loader):
    try:
        return loader()
    except (FileNotFoundError, ImportError):
        raise
    except Exception as error:  # keras-hub raises ValueError, KeyError, OSError, ...
        raise ValueError(f"could not load the {what} of keras-hub preset {preset!r}: "
                         f"{type(error).__name__}: {error}") from error


def load_backbone(preset, load_weights=True):
    """The preset's backbone, through `keras_hub.models.Backbone.from_preset`."""
    preset = check_preset(preset)
    hub = keras_hub()
    return _load("backbone", preset,
                 lambda: hub.models.Backbone.from_preset(preset, load_weights=load_weights))


def _optional(what, preset, config_file, loader):
    """A preset part that may be absent: None when a local preset has no `config_file`."""
    if _is_local(preset) and not os.path.isfile(os.path.join(preset, config_file)):
        return None
    try:
        return _load(what, preset, loader)
    except FileNotFoundError:
        return None


def load_tokenizer(preset):
    """The preset's tokenizer (vocabulary included), or None when the preset has none."""
    preset = check_preset(preset)
    hub = keras_hub()
    return _optional("tokenizer", preset, TOKENIZER_CONFIG,
                     lambda: hub.tokenizers.Tokenizer.from_preset(preset))


def load_image_converter(preset):
    """The preset's image converter (resize, rescale, normalise), or None without one."""
    preset = check_preset(preset)
    hub = keras_hub()
    return _optional("image converter", preset, IMAGE_CONVERTER_CONFIG,
                     lambda: hub.layers.ImageConverter.from_preset(preset))


def is_two_tower_backbone(backbone):
    """A CLIP-like backbone holding both encoders (`vision_encoder` and `text_encoder`)."""
    return hasattr(backbone, "vision_encoder") and hasattr(backbone, "text_encoder")
