"""keras-hub backbones as towers: pretrained image and text encoders under the method's head.

`ImageTower` (CLIP vision encoder, ViT, ...) and `TextTower` (CLIP text encoder, BERT, ...)
are Keras layers for `CrossModalEncoder(image_tower, text_tower)`: backbone -> its own pooling
-> `ProjectionTower` (L2-normalised), the backbone frozen (`freeze_backbone=True`, the
default) or fine-tuned. Build them from a keras-hub preset folder, which loads the backbone
with `Backbone.from_preset` and the matching tokenizer / image converter with theirs:

```python
from keras_cmr.encoders import RawPairBatches, clip_towers
from keras_cmr.evaluation import RetrievalEvaluation
from keras_cmr.models import CrossModalEncoder, SourceModel

image_tower, text_tower = clip_towers("./clip_preset", embedding_dim=256)  # one CLIP preset
# or ImageTower.from_preset("./vit_preset", 256), TextTower.from_preset("./bert_preset", 256),
# or ImageTower(backbone, 256, image_converter=...), TextTower(backbone, 256, tokenizer=...)
encoder = CrossModalEncoder(image_tower, text_tower)

model = SourceModel(encoder, num_classes)
model.compile(optimizer="adam")
val = RetrievalEvaluation(image_tower.preprocess(val_images),
                          text_tower.preprocess(val_captions), val_labels)
model.fit(RawPairBatches(images, captions, labels, image_tower, text_tower, batch_size=64),
          epochs=10, callbacks=[val])
encoder.encode_image(test_images)      # raw uint8 (n, H, W, 3): preprocessed, then embedded
encoder.encode_text(test_captions)     # list of str: tokenised, then embedded
```

Preprocessing runs outside the compiled train step, as keras-hub tasks apply their
preprocessors in the input pipeline (raw strings cannot enter a JAX or PyTorch graph). Each
tower's `preprocess` gives numpy arrays: `ImageTower.preprocess(uint8 (n, H, W, 3))` ->
float32 `(n, S, S, 3)` through the image converter (resize, rescale, normalise);
`TextTower.preprocess(list of str)` -> int32 token ids `(n, sequence_length)`, packed
`[start] tokens [end] pad...` with the tokenizer (CLIP's BPE, BERT's WordPiece). The towers
themselves take those arrays, one per modality (the text tower derives the padding mask and
segment ids from the ids in the graph), so `CrossModalEncoder`, `predict` and
`RetrievalEvaluation` treat them like feature matrices. `RawPairBatches` (a `PyDataset`)
feeds `fit` from raw data; called eagerly on raw inputs, a tower preprocesses them first.

Saving: `model.save("model.keras")` stores the backbones' weights, the heads, the image
converter's config and the tokenizer's vocabulary (as `.keras` assets, through keras-hub's
`save_assets` / `load_assets`); `keras.saving.load_model` (safe mode included) rebuilds all of
it after `import keras_cmr.encoders`, which imports keras-hub when a tower is deserialised.

keras-hub (`pip install "keras-cmr[hub]"`) is imported only when a tower is built or loaded.
"""

from keras_cmr.encoders.base import HubTower
from keras_cmr.encoders.batches import RawPairBatches
from keras_cmr.encoders.clip import clip_towers
from keras_cmr.encoders.features import extract_features
from keras_cmr.encoders.image_tower import ImageTower
from keras_cmr.encoders.text_tower import TextTower

__all__ = ["HubTower", "ImageTower", "RawPairBatches", "TextTower", "clip_towers",
           "extract_features"]
