"""A tiny, randomly initialised CLIP preset: offline smoke runs, demos and tests.

Real CLIP presets need a download; this one is built from small configs (as keras-hub's own
tests build their models) and saved with `save_to_preset`, so the whole raw-input path
(`from_preset`, tokenisation, training, `.keras` files) runs anywhere. Its embeddings are
random: it shows that the pipeline works, not what CLIP features are worth.
"""

import keras

from keras_cmr.encoders._hub import keras_hub

DEMO_WORDS = ("a", "cat", "dog", "red", "blue", "on", "the", "mat", "sits", "runs")


def bpe_vocabulary(words):
    """A byte-level BPE vocabulary and merges that spell each of `words` as one token.

    The special tokens come last, so the end token has the largest id, as in CLIP (its text
    pooling reads the hidden state at the largest id).
    """
    vocabulary, merges = {}, []
    for char in sorted(set("".join(words))):
        vocabulary.setdefault(char, len(vocabulary))
        vocabulary.setdefault(char + "</w>", len(vocabulary))
    for word in words:
        merged = word[0]
        for position, char in enumerate(word[1:]):
            piece = char + "</w>" if position == len(word) - 2 else char
            merges.append(f"{merged} {piece}")
            merged += piece
            vocabulary.setdefault(merged, len(vocabulary))
    for token in ("<|startoftext|>", "<|endoftext|>"):
        vocabulary[token] = len(vocabulary)
    return vocabulary, list(dict.fromkeys(merges))


def tiny_clip_parts(words=DEMO_WORDS, image_size=16, sequence_length=8, width=8, seed=0):
    """(CLIPBackbone, CLIPTokenizer, CLIPImageConverter) of a tiny random CLIP.

    Images `image_size` square in patches of `image_size // 2`, captions of at most
    `sequence_length` tokens over `words` (each word one token), one layer of `width` per
    encoder.
    """
    hub = keras_hub()
    keras.utils.set_random_seed(seed)
    vocabulary, merges = bpe_vocabulary(words)
    vision = hub.models.CLIPVisionEncoder(
        patch_size=image_size // 2, hidden_dim=width, num_layers=1, num_heads=2,
        intermediate_dim=2 * width, image_shape=(image_size, image_size, 3))
    text = hub.models.CLIPTextEncoder(
        vocabulary_size=len(vocabulary), embedding_dim=width, hidden_dim=width, num_layers=1,
        num_heads=2, intermediate_dim=2 * width, max_sequence_length=sequence_length)
    backbone = hub.models.CLIPBackbone(vision, text, projection_dim=width)
    tokenizer = hub.models.CLIPTokenizer(vocabulary=vocabulary, merges=merges)
    converter = hub.layers.CLIPImageConverter(image_size=(image_size, image_size),
                                              scale=1 / 255.0)
    return backbone, tokenizer, converter


def save_tiny_clip_preset(folder, **kwargs):
    """Saves `tiny_clip_parts(**kwargs)` as a keras-hub preset folder; returns the folder."""
    for part in tiny_clip_parts(**kwargs):
        part.save_to_preset(str(folder))
    return str(folder)
