"""The two-tower cross-modal encoder and the base that every trainable model shares."""

import re

import keras
import numpy as np
from keras import ops

from keras_cmr.distribution import batch_multiple, scale_for_replicas
from keras_cmr.layers import ProjectionTower
from keras_cmr.models.inputs import (host_array, resolve_steps_per_execution, steps_for_callbacks,
                                     steps_per_epoch)
from keras_cmr.utils.checks import check_labels, check_positive_int

MODALITIES = ("image", "text")


def check_modalities(inputs):
    """Raises a clear error unless `inputs` is a dict with an "image" and a "text" entry."""
    if not isinstance(inputs, dict) or any(key not in inputs for key in MODALITIES):
        found = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
        raise ValueError(
            'keras_cmr models take a dict {"image": image_features, "text": text_features}; '
            f"got {found}."
        )


def check_inputs(inputs):
    """`check_modalities`, and equal pair counts where the shapes are known."""
    check_modalities(inputs)
    image_shape, text_shape = ops.shape(inputs["image"]), ops.shape(inputs["text"])
    if (isinstance(image_shape[0], int) and isinstance(text_shape[0], int)
            and image_shape[0] != text_shape[0]):
        raise ValueError(
            f"image and text must hold the same number of pairs, got {image_shape[0]} images "
            f"and {text_shape[0]} texts."
        )


def backend_neutral_compile_config(config):
    """Rewrites what a file saved on one backend would impose on the others.

    On PyTorch, Keras serializes `Adam` as `keras.src.backend.torch.optimizers.torch_adam.Adam`,
    a class that TensorFlow and JAX cannot train with. The public `keras.optimizers.Adam`
    resolves to the right implementation on whichever backend loads the file. Keras also
    stores `jit_compile` as resolved by the saving backend (True on JAX), which would make a
    PyTorch user's `fit` start with minutes of `torch.compile`: "auto" lets the loading
    backend choose its own compiler. `steps_per_execution` likewise becomes "auto", the
    loading backend's default (`keras_cmr.models.default_steps_per_execution`): TensorFlow's
    20 would make PyTorch's `fit` fail, since its trainer accepts only 1.
    """
    for key in ("jit_compile", "steps_per_execution"):
        if key in config:
            config = {**config, key: "auto"}
    optimizer = config.get("optimizer")
    if isinstance(optimizer, dict) and str(optimizer.get("module", "")).startswith(
            "keras.src.backend."):
        config = {**config, "optimizer": {**optimizer, "module": "keras.optimizers"}}
    return config


@keras.saving.register_keras_serializable(package="keras_cmr")
class CrossModalEncoder(keras.Model):
    """Two towers into one shared, L2-normalised embedding space.

    `call({"image": x_img, "text": x_txt})` returns `{"image": u, "text": v}`. The towers are
    any Keras layers (projection heads on features, keras-hub backbones on raw inputs).

    Example:

    ```python
    encoder = CrossModalEncoder.projection(embedding_dim=64)
    embeddings = encoder({"image": np.zeros((2, 128)), "text": np.zeros((2, 10))})
    ```

    Args:
        image_tower: layer mapping image inputs to embeddings.
        text_tower: layer mapping text inputs to embeddings of the same width.
    """

    def __init__(self, image_tower, text_tower, **kwargs):
        super().__init__(**kwargs)
        self.image_tower = image_tower
        self.text_tower = text_tower

    @classmethod
    def projection(cls, embedding_dim=256, hidden_dims=(256,), dropout=0.1, input_dropout=0.0,
                   **kwargs):
        """An encoder of two CLIP4CMR projection towers of the same output width
        (`input_dropout`: dropout on each tower's input features, 0 by default)."""
        towers = {
            modality: ProjectionTower(embedding_dim, hidden_dims=hidden_dims, dropout=dropout,
                                      input_dropout=input_dropout, name=f"{modality}_tower")
            for modality in MODALITIES
        }
        return cls(towers["image"], towers["text"], **kwargs)

    def build(self, input_shape):
        check_modalities(input_shape)
        # Towers rebuilt from a saved config may come built already.
        for modality in MODALITIES:
            tower = getattr(self, f"{modality}_tower")
            if not tower.built:
                tower.build(input_shape[modality])

    def call(self, inputs, training=None):
        check_inputs(inputs)
        return {
            "image": self.image_tower(inputs["image"], training=training),
            "text": self.text_tower(inputs["text"], training=training),
        }

    def encode_image(self, images, batch_size=256):
        """Embeds image inputs in inference mode, batch by batch; returns a numpy array."""
        return _encode(self.image_tower, images, batch_size, "image")

    def encode_text(self, texts, batch_size=256):
        """Embeds text inputs in inference mode, batch by batch; returns a numpy array."""
        return _encode(self.text_tower, texts, batch_size, "text")

    def get_config(self):
        return {
            **super().get_config(),
            "image_tower": keras.saving.serialize_keras_object(self.image_tower),
            "text_tower": keras.saving.serialize_keras_object(self.text_tower),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("image_tower", "text_tower"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def get_compile_config(self):
        return backend_neutral_compile_config(super().get_compile_config())


def _encode(tower, inputs, batch_size, modality):
    batch_size = check_positive_int(batch_size, "`batch_size`")
    count = len(inputs)
    try:
        chunks = [
            ops.convert_to_numpy(tower(inputs[start:start + batch_size], training=False))
            for start in range(0, count, batch_size)
        ]
    except ValueError as error:
        # Keras' message is long, styled and names the layer, not the modality; keep its gist.
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
        detail = next((line.strip() for line in message.splitlines()
                       if "expected" in line.lower() or "incompatible" in line.lower()),
                      message.splitlines()[0] if message else "")
        shape = getattr(inputs, "shape", None)
        raise ValueError(f"the {modality} tower cannot embed {modality} inputs of shape "
                         f"{tuple(shape) if shape is not None else '?'}: {detail}") from error
    if not chunks:
        raise ValueError("nothing to encode: the input holds no rows.")
    return np.concatenate(chunks, axis=0)


class CrossModalTrainer(keras.Model):
    """Base of the trainable models: an encoder plus a training objective.

    Subclasses implement `training_loss(x, labels, embeddings, training)`, a scalar; `fit`
    then works with `model.fit(x={"image": ..., "text": ...}, y=labels)`. `call` returns the
    encoder's embeddings, so prediction, evaluation and serving need only `model.encoder`.
    In-batch objectives compare every pair of the batch, so per-sample weights do not apply:
    `sample_weight` is refused.
    """

    def __init__(self, encoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder

    def build(self, input_shape):
        if not self.encoder.built:
            self.encoder.build(input_shape)
        # A trainer with a `classifier` (a class head both modalities' embeddings go through,
        # see `classified`) builds it too. No class-level default: on PyTorch a class
        # attribute would hide the layer, which torch keeps among its modules.
        classifier = getattr(self, "classifier", None)
        if classifier is not None:
            self.build_head(classifier, input_shape)

    def classified(self, embeddings, name):
        """`embeddings` with `classifier`'s output on each modality as "image_<name>" and
        "text_<name>" (the y_pred keys of the class-wise losses)."""
        return {**embeddings, f"image_{name}": self.classifier(embeddings["image"]),
                f"text_{name}": self.classifier(embeddings["text"])}

    def build_head(self, head, input_shape):
        """Builds `head`, a layer applied to the embeddings, for the image embeddings' shape."""
        if not head.built:
            head.build(self.encoder.image_tower.compute_output_shape(input_shape["image"]))

    def call(self, inputs, training=None):
        return self.encoder(inputs, training=training)

    def compile(self, *args, steps_per_execution="auto", **kwargs):
        """`keras.Model.compile`, with `steps_per_execution="auto"` by default: the backend's
        choice by our measurement (`keras_cmr.models.default_steps_per_execution`: 20 train
        steps per graph call on TensorFlow, 1 on JAX and PyTorch). Grouping steps changes no
        number: the same steps run in the same order. With "auto", a `fit` whose callbacks
        hook single batches runs single steps, so they see every batch.
        """
        self._auto_steps_per_execution = steps_per_execution in (None, "auto")
        super().compile(*args, steps_per_execution=resolve_steps_per_execution(
            steps_per_execution), **kwargs)

    def fit(self, x=None, y=None, batch_size=None, **kwargs):
        """`keras.Model.fit`, with in-memory inputs checked first (a data set passes as is).

        A dict of arrays with labels is validated as a `CrossModalSplit` named "fit" (pair
        counts, shapes, NaN / inf, label kind, naming the array and row), the labels against
        the model's classes, and the batch size: in-batch objectives compare each pair with the
        others of its batch, so no batch may hold a single pair. Backend tensors (JAX, TensorFlow,
        PyTorch) are checked through one host copy per call.
        """
        if isinstance(x, dict) and y is not None and "image" in x and "text" in x:
            self._check_fit_arrays({key: host_array(value) for key, value in x.items()},
                                   host_array(y), 32 if batch_size is None else batch_size)
            self.build_for(x)
        if getattr(self, "_auto_steps_per_execution", False):
            steps = steps_for_callbacks(kwargs.get("callbacks"))
            epoch_steps = kwargs.get("steps_per_epoch") or steps_per_epoch(x, batch_size)
            if epoch_steps:
                # Keras' progress bar counts the last step of each group: a group longer than
                # the epoch would read "20/13".
                steps = min(steps, epoch_steps)
            if steps != self.steps_per_execution:
                self.steps_per_execution = steps
                self.train_function = None  # compiled for the other grouping
        return super().fit(x, y, batch_size=batch_size, **kwargs)

    def build_for(self, inputs):
        """Builds the model for `inputs` (a dict of arrays, one row per pair) and then its
        optimizer, where either is not built yet.

        Keras on TensorFlow otherwise builds both inside the first traced train step, and a
        step that creates variables is traced again: building first saves a trace, about a
        second of every fit at the default towers (our measurement). `fit` does it for a dict
        of arrays; the protocol does it before fitting on batches.
        """
        if not self.built:
            self.build({key: (None, *tuple(value.shape)[1:]) for key, value in inputs.items()})
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    def _check_fit_arrays(self, x, y, batch_size):
        from keras_cmr.datasets.container import CrossModalSplit

        if all(np.ndim(x[modality]) == 2 for modality in MODALITIES):
            split = CrossModalSplit(x["image"], x["text"], y, name="fit")
            labels, num_pairs = split.labels, split.num_pairs
        else:  # raw-input towers (images, token ids): check counts and labels only
            labels = check_labels(y, "label_fit")
            counts = {name: len(array) for name, array in
                      (("images", x["image"]), ("texts", x["text"]), ("labels", labels))}
            if len(set(counts.values())) != 1:
                raise ValueError(f"fit: the inputs hold different numbers of pairs: {counts}")
            num_pairs = len(labels)
        num_classes = getattr(self, "num_classes", None)
        if num_classes is not None and labels.ndim == 1:
            outside = np.flatnonzero(labels >= num_classes)
            if len(outside):
                row = int(outside[0])
                raise ValueError(f"fit: row {row} has label {int(labels[row])}, outside "
                                 f"[0, {num_classes}) of {type(self).__name__}")
        if num_classes is not None and labels.ndim == 2 and labels.shape[1] != num_classes:
            raise ValueError(f"fit: multi-hot labels have {labels.shape[1]} columns, "
                             f"{type(self).__name__} has {num_classes} classes")
        if batch_size < 2:
            raise ValueError(f"batch_size={batch_size}: the in-batch losses compare each pair "
                             "with the others of its batch, so a batch needs at least 2 pairs")
        if num_pairs % batch_size == 1:
            raise ValueError(f"fit: {num_pairs} pairs in batches of {batch_size} leave a "
                             "last batch of a single pair, which in-batch losses cannot use; "
                             "change batch_size or drop a pair")
        devices = batch_multiple()
        if batch_size % devices or num_pairs % batch_size % devices:
            raise ValueError(f"fit: the distribution shards every batch over {devices} devices, "
                             f"so batch_size ({batch_size}) and the last batch "
                             f"({num_pairs % batch_size or batch_size} of {num_pairs} "
                             "pairs) must divide by it; change batch_size, drop pairs, or fit "
                             "on PairBatches (drop_remainder=True)")

    def encode_image(self, images, batch_size=256):
        return self.encoder.encode_image(images, batch_size=batch_size)

    def encode_text(self, texts, batch_size=256):
        return self.encoder.encode_text(texts, batch_size=batch_size)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} trains on class labels: call "
                "fit(x={'image': ..., 'text': ...}, y=labels)."
            )
        if sample_weight is not None:
            raise ValueError(
                f"{type(self).__name__} uses in-batch objectives over all pairs of a batch; "
                "per-sample weights are not supported."
            )
        loss = self.training_loss(x, y, y_pred, training)
        for extra in self.losses:  # regularisers of the towers
            # Every replica adds them in full and the strategy sums the replicas' gradients.
            loss = loss + scale_for_replicas(ops.cast(extra, loss.dtype))
        return loss

    def training_loss(self, x, labels, embeddings, training):
        raise NotImplementedError

    def training_inputs(self, x, labels):
        """`x` (a dict of arrays, one row per training pair, all of them) with the inputs that
        the objective derives from the whole training set (a transfer model's label trust);
        the protocol calls it before batching. The base adds none."""
        return x

    def get_config(self):
        config = super().get_config()
        for key in self.serialized_children:
            child = getattr(self, key)
            config[key] = None if child is None else keras.saving.serialize_keras_object(child)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in cls.serialized_children:
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def get_compile_config(self):
        return backend_neutral_compile_config(super().get_compile_config())

    def compile_from_config(self, config):
        # Keras skips compiling a loaded model whose class overrides `compile`; these are
        # Keras' own steps (`Trainer.compile_from_config`), through our `compile`.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)
