"""Options as frozen, validated types, checked once where the user's input enters.

Framework-free (the standard library only), so that a config and the command line can build
and check them before a backend is imported: `SoftContrastiveOptions` (the soft contrastive
loss), `SymmetricCrossEntropyOptions` (a class-wise source's loss), `LabelNoise` and the
preprocessing steps (the data), `SourceSetting` (a transfer's source), and
`options_from_mapping`, which reads any of them, or a method's own options type, from an
experiment file's JSON object.
"""

from keras_cmr.options.checks import options_from_mapping
from keras_cmr.options.data import (NOISE_KINDS, PREPROCESSING_STEPS, LabelNoise,
                                    check_noise_arguments, check_steps)
from keras_cmr.options.loss import SoftContrastiveOptions, SymmetricCrossEntropyOptions
from keras_cmr.options.source import SourceSetting

__all__ = ["LabelNoise", "NOISE_KINDS", "PREPROCESSING_STEPS", "SoftContrastiveOptions",
           "SourceSetting", "SymmetricCrossEntropyOptions", "check_noise_arguments",
           "check_steps", "options_from_mapping"]
