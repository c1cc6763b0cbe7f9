"""A tiny randomly initialised CLIP saved as a keras-hub preset folder, once per session.

16x16 images, 8-token captions over WORDS, width 8, one layer per encoder
(`keras_cmr.encoders.tiny`): small enough to train in a test, real enough to go through
`save_to_preset` / `from_preset`.
"""

import pytest

from keras_cmr.encoders.tiny import DEMO_WORDS, tiny_clip_parts

WORDS = DEMO_WORDS
IMAGE_SIZE = 16
SEQUENCE_LENGTH = 8


@pytest.fixture(scope="session")
def clip_parts():
    return tiny_clip_parts(WORDS, image_size=IMAGE_SIZE, sequence_length=SEQUENCE_LENGTH)


@pytest.fixture(scope="session")
def clip_preset(clip_parts, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("clip_preset"))
    for part in clip_parts:
        part.save_to_preset(folder)
    return folder
