"""What a transfer method learns from: one trained source model, or out-of-fold embeddings.

Both are `SourceProvider`s, so the protocol (`run_method`, `compare`, `keras-cmr train`)
handles them the same way: `model` goes to the method's build function, `inputs()` goes with
the training pairs to `fit`, `check` refuses embeddings made for another split.
"""

import dataclasses
import hashlib
import os

import numpy as np


class SourceProvider:
    """The interface of a transfer method's source.

    Attributes:
        model: the trained source model the transfer model embeds each batch with; None when
            the source embeddings come with the batches (`inputs()`).
        history: the source's training stage (epochs, validation curve) when it was trained
            for this run as one model; None otherwise.
    """

    model = None
    history = None

    def inputs(self):
        """Extra `fit` inputs, row-aligned with the training pairs ({} for none)."""
        return {}

    def check(self, train):
        """Raises ValueError when this source cannot serve the training split `train`."""

    def result_entries(self):
        """The `RunResult` fields this source sets ({} for none)."""
        return {}

    def save_encoders(self, folder):
        """Saves the source encoder(s) in `folder`; returns the file name(s) as one label."""
        raise NotImplementedError


@dataclasses.dataclass
class TrainedSource(SourceProvider):
    """One `config.source_method` model that trained on every training pair.

    `model`: a trained `CrossModalTrainer` (e.g. `SourceModel`) or `CrossModalEncoder`;
    `history`: its training stage when trained for this run (None when given).
    """

    model: object
    history: dict = None

    @property
    def encoder(self):
        """The source's `CrossModalEncoder` (the serving part of a trainer)."""
        from keras_cmr.models import CrossModalTrainer

        return self.model.encoder if isinstance(self.model, CrossModalTrainer) else self.model

    def save_encoders(self, folder):
        from keras_cmr import saving

        saving.save_model(self.encoder, os.path.join(folder, "source_encoder.keras"))
        return "source_encoder.keras"


@dataclasses.dataclass
class OutOfFoldSource(SourceProvider):
    """Source embeddings of the training pairs, each from a source that never trained on it.

    `image` and `text` are row-aligned with the training split they were made for (whose
    `split_fingerprint` they keep); its pair i fell in fold `fold_ids[i]`. `encoders[k]` is
    the source that embedded fold k (it trained on every other fold) and `folds[k]` its
    training history (epochs, validation curve).
    """

    image: np.ndarray
    text: np.ndarray
    fold_ids: np.ndarray
    encoders: list
    folds: list
    seconds: float
    split_fingerprint: str

    @staticmethod
    def fingerprint(split):
        """A digest of a split's pairs, to catch embeddings made for another split."""
        digest = hashlib.sha256()
        for array in (split.image, split.text, split.labels):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def inputs(self):
        return {"source_image": self.image, "source_text": self.text}

    def check(self, train):
        if self.split_fingerprint != OutOfFoldSource.fingerprint(train):
            raise ValueError("the OutOfFoldSource was made for another training split "
                             "(another seed or validation fraction); make it from this run's "
                             "split")

    def result_entries(self):
        return {"source_folds": self.folds}

    def save_encoders(self, folder):
        from keras_cmr import saving

        for fold, encoder in enumerate(self.encoders):
            saving.save_model(encoder, os.path.join(folder, f"source_fold{fold}_encoder.keras"))
        return f"source_fold{{0..{len(self.encoders) - 1}}}_encoder.keras"


def as_source(source):
    """`source` as a `SourceProvider`: None stays None, a trained model becomes a
    `TrainedSource`."""
    if source is None or isinstance(source, SourceProvider):
        return source
    return TrainedSource(source)
