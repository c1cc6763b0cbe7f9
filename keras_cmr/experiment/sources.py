"""What a transfer method learns from: one trained source model, out-of-fold embeddings, or
the better of several on the validation split.

All are `SourceProvider`s, so the protocol (`run_method`, `compare`, `keras-cmr train`)
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

    def validation_avg_map(self):
        """The source's best validation average mAP (the mean over its models when it has
        several); None when it was not trained for this run."""
        return None

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

    def validation_avg_map(self):
        return None if self.history is None else self.history["best_val_avg_map"]

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

    def validation_avg_map(self):
        return float(np.mean([fold["best_val_avg_map"] for fold in self.folds]))

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


@dataclasses.dataclass
class ChosenSource(SourceProvider):
    """The source with the highest validation average mAP among several made for one run.

    `chosen`: that `SourceProvider`; `label`: its setting's label (`SourceSetting.label`);
    `figures`: {label: best validation avg mAP} of every candidate, the chosen one included.
    Everything else is the chosen source's.
    """

    chosen: SourceProvider
    label: str
    figures: dict

    @classmethod
    def best_of(cls, candidates):
        """The `ChosenSource` of `candidates`, a {label: trained `SourceProvider`} dict; the
        first listed wins a tie."""
        figures = {label: source.validation_avg_map() for label, source in candidates.items()}
        untrained = [label for label, figure in figures.items() if figure is None]
        if untrained:
            raise ValueError(f"sources {untrained} have no validation figure to choose by "
                             f"(they were not trained for this run)")
        label = max(figures, key=figures.get)  # the first of equal figures
        return cls(candidates[label], label, figures)

    def __post_init__(self):
        self.model, self.history = self.chosen.model, self.chosen.history

    @property
    def encoder(self):
        return self.chosen.encoder

    def validation_avg_map(self):
        return self.figures[self.label]

    def inputs(self):
        return self.chosen.inputs()

    def check(self, train):
        self.chosen.check(train)

    def result_entries(self):
        return {**self.chosen.result_entries(),
                "source_choice": {"chosen": self.label, "best_val_avg_map": self.figures}}

    def save_encoders(self, folder):
        return self.chosen.save_encoders(folder)


def as_source(source):
    """`source` as a `SourceProvider`: None stays None, a trained model becomes a
    `TrainedSource`."""
    if source is None or isinstance(source, SourceProvider):
        return source
    return TrainedSource(source)
