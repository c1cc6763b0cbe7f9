"""Train and compare methods under one protocol: same towers, optimiser, budget, selection.

Every method is selected by early stopping on the validation average mAP (never the test
split); the test split is embedded once, by the selected weights.
"""

import dataclasses
import hashlib
import time

import keras
import numpy as np

from keras_cmr import losses
from keras_cmr.datasets import CrossModalDataset, stratified_folds
from keras_cmr.evaluation import RetrievalEvaluation, evaluate_retrieval, precision_recall_curve
from keras_cmr.models import (CrossModalEncoder, DSCMRModel, PairwiseModel, SourceModel,
                              TransferModel)

PAIR_LOSSES = {
    "contrastive": losses.ContrastiveLoss,
    "triplet": losses.TripletLoss,
    "infonce": losses.InfoNCELoss,
    "supervised_infonce": losses.SupervisedInfoNCELoss,
}
METHOD_DESCRIPTIONS = {
    "source": "class-wise only: normalised-softmax cross-entropy, shared classifier (stage 1)",
    "source_pcl": "class-wise only: prototype contrastive loss, fixed random prototypes",
    "source_regression": "class-wise only: label regression (DSCMR's linear classifier)",
    "contrastive": "pair-wise only: contrastive loss, hard labels (Hadsell)",
    "triplet": "pair-wise only: triplet loss, hardest negative (VSE++)",
    "infonce": "pair-wise only: symmetric InfoNCE (CLIP)",
    "supervised_infonce": "pair-wise only: supervised InfoNCE (same-class pairs positive)",
    "naive_sum": "class-wise cross-entropy + contrastive loss, summed in one model",
    "dscmr": "DSCMR: label regression + pairwise likelihood + modality invariance",
    "kim": "embedding transfer with a fixed margin (Kim et al., CVPR 2021)",
    "met": "MET: embedding transfer, relaxed labels and relaxed margins (soft contrastive)",
    "control": "no-source control: MET's loss with w = lam * y (no transfer)",
}
METHODS = tuple(METHOD_DESCRIPTIONS)
# The class-wise models a transfer method can take as its source.
SOURCE_METHODS = ("source", "source_pcl", "source_regression")
TRANSFER_METHODS = ("met", "kim")
SOURCE_HEADS = {"source": "cosine", "source_pcl": "prototype", "source_regression": "regression"}


@dataclasses.dataclass
class TrainingConfig:
    """The shared protocol (METHOD.md: Adam, beta_1 0.5, patience 10) and method options.

    The learning rate (1e-3), tower width (1024), source (prototype contrastive) and the soft
    contrastive defaults were chosen on the Wikipedia validation split by experiments/search.py
    (METHOD.md's lr 1e-4 was still improving after 200 epochs); see docs/results.md.

    `source_method` names the class-wise model that "met" and "kim" transfer from;
    `soft_contrastive` holds `SoftContrastiveLoss` arguments for "met" and "kim", and
    `control_soft_contrastive` those of "control" (None: the same as `soft_contrastive`).
    `source_folds` > 1 makes "met" and "kim" learn from out-of-fold source embeddings
    (`out_of_fold_source`) instead of one source that saw every training pair. It stays 1 by
    default: on the Wikipedia validation split 5 folds gained 0.002 validation avg mAP over 5
    seeds (`experiments/wikipedia.json` uses them), inside the seed spread, for 5 more source
    trainings.
    """

    epochs: int = 200
    batch_size: int = 100
    learning_rate: float = 1e-3
    beta_1: float = 0.5
    patience: int = 10
    embedding_dim: int = 256
    hidden_dims: tuple = (1024,)
    dropout: float = 0.1
    validation_fraction: float = 0.1
    scale: float = 16.0
    source_method: str = "source_pcl"
    soft_contrastive: dict = dataclasses.field(default_factory=dict)
    control_soft_contrastive: dict = None
    source_folds: int = 1
    verbose: int = 1

    def __post_init__(self):
        for name in ("epochs", "batch_size", "patience", "embedding_dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"`{name}` must be a positive integer, got "
                                 f"{getattr(self, name)!r}.")
        if int(self.batch_size) < 2:
            raise ValueError(f"`batch_size` must be at least 2: the in-batch losses need 2 "
                             f"pairs per batch, got {self.batch_size!r}.")
        if self.learning_rate <= 0:
            raise ValueError(f"`learning_rate` must be positive, got {self.learning_rate!r}.")
        if (isinstance(self.source_folds, bool) or not isinstance(self.source_folds, int)
                or self.source_folds < 1):
            raise ValueError(f"`source_folds` must be 1 (one source) or an integer >= 2 "
                             f"(out-of-fold sources), got {self.source_folds!r}.")
        self.hidden_dims = tuple(self.hidden_dims)
        if self.source_method not in SOURCE_METHODS:
            raise ValueError(f"`source_method` must be one of {SOURCE_METHODS}, got "
                             f"{self.source_method!r}.")
        # Fails now, not after the source has trained, on an unknown or bad loss option.
        losses.SoftContrastiveLoss(**self.soft_contrastive)
        losses.SoftContrastiveLoss(**self.control_options())

    def control_options(self):
        """The `SoftContrastiveLoss` arguments of the no-source control."""
        if self.control_soft_contrastive is None:
            return dict(self.soft_contrastive)
        return dict(self.control_soft_contrastive)


def make_encoder(config, name=None):
    return CrossModalEncoder.projection(config.embedding_dim, hidden_dims=config.hidden_dims,
                                        dropout=config.dropout, name=name)


def build_model(method, num_classes, config, source=None):
    """The trainable model of `method`; transfer methods need the trained `source`."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {list(METHODS)}.")
    encoder = make_encoder(config, name=f"{method}_encoder")
    if method in SOURCE_METHODS:
        return SourceModel(encoder, num_classes, head=SOURCE_HEADS[method], scale=config.scale)
    if method in PAIR_LOSSES:
        return PairwiseModel(encoder, PAIR_LOSSES[method]())
    if method == "naive_sum":
        return SourceModel(encoder, num_classes, scale=config.scale,
                           pair_loss=losses.ContrastiveLoss())
    if method == "dscmr":
        return DSCMRModel(encoder, num_classes)
    if method == "control":
        return PairwiseModel(encoder, losses.SoftContrastiveLoss(**config.control_options()))
    if source is None:
        raise ValueError(f"method {method!r} transfers from a trained source model (or an "
                         "OutOfFoldSource); pass it.")
    options = dict(config.soft_contrastive)
    if method == "kim":
        options["margin"] = "fixed"
    # Out-of-fold embeddings come with every batch instead of from a source model.
    model_source = None if isinstance(source, OutOfFoldSource) else source
    return TransferModel(encoder, model_source, losses.SoftContrastiveLoss(**options))


@dataclasses.dataclass
class OutOfFoldSource:
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


def out_of_fold_source(dataset, config, seed=0, callbacks=()):
    """Cross-fitted source embeddings of `dataset.train` (validation split already carved).

    A class-wise source on every training pair embeds, in training, pairs it has fitted: on a
    small data set its cross-modal similarities then restate the hard labels. Here the
    training pairs are split into `config.source_folds` class-stratified folds
    (`stratified_folds`, seeded by `seed`); the k-th `config.source_method` model trains on
    every pair outside fold k (early stopping on the shared validation split) and embeds
    fold k. The test split is not read.

    Returns:
        An `OutOfFoldSource`, to pass as `source` to `run_method` or `build_model`.
    """
    if config.source_folds < 2:
        raise ValueError(f"out-of-fold sources need config.source_folds >= 2, got "
                         f"{config.source_folds}.")
    if dataset.val is None:
        raise ValueError("carve the validation split first (dataset.with_validation): the "
                         "fold sources stop early on it.")
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    train = dataset.train
    fold_ids = stratified_folds(train.labels, config.source_folds, seed=seed)
    image = text = None
    encoders, folds = [], []
    for fold in range(config.source_folds):
        inside = np.flatnonzero(fold_ids != fold)
        held_out = np.flatnonzero(fold_ids == fold)
        if config.verbose:
            print(f"out-of-fold source {fold + 1}/{config.source_folds}: trains on "
                  f"{inside.size} pairs, embeds {held_out.size}", flush=True)
        model, history = _train(build_model(config.source_method, dataset.num_classes, config),
                                _with_train(dataset, train.take(inside)), config, callbacks)
        embedded_image = model.encode_image(train.image[held_out])
        embedded_text = model.encode_text(train.text[held_out])
        if image is None:
            image = np.zeros((train.num_pairs, embedded_image.shape[1]), "float32")
            text = np.zeros((train.num_pairs, embedded_text.shape[1]), "float32")
        image[held_out], text[held_out] = embedded_image, embedded_text
        encoders.append(model.encoder)
        folds.append(history)
    return OutOfFoldSource(image, text, fold_ids, encoders, folds, time.perf_counter() - start,
                           OutOfFoldSource.fingerprint(train))


def _with_train(dataset, train):
    """`dataset` with another training split (same validation and test splits)."""
    return CrossModalDataset(train=train, val=dataset.val, test=dataset.test,
                             num_classes=dataset.num_classes, class_names=dataset.class_names,
                             name=dataset.name, allow_unseen_classes=True)


def fit_selected(model, dataset, config, callbacks=(), source=None):
    """Fits with validation early stopping on `val_avg_map`; restores the best epoch.

    `source`: an `OutOfFoldSource` whose embeddings go with the training pairs.
    """
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1))
    train, val = dataset.train, dataset.val
    evaluation = RetrievalEvaluation(val.image, val.text, val.labels)
    stopping = keras.callbacks.EarlyStopping(monitor="val_avg_map", mode="max",
                                             patience=config.patience,
                                             restore_best_weights=True)
    inputs = {"image": train.image, "text": train.text}
    if source is not None:
        inputs.update(source_image=source.image, source_text=source.text)
    history = model.fit(
        inputs, train.labels,
        batch_size=config.batch_size, epochs=config.epochs, shuffle=True,
        callbacks=[evaluation, stopping, *callbacks], verbose=config.verbose,
    )
    return history.history


def measure_test_split(encoder, split, curves=False):
    """I2T / T2I figures of `encoder` on a split (the test split: read once per model).

    With `curves`, returns `(figures, curves)`: curves holds the 11-point interpolated
    precision-recall curves, {"recall": levels, "i2t": precisions, "t2i": precisions}.
    """
    image, text = encoder.encode_image(split.image), encoder.encode_text(split.text)
    figures = evaluate_retrieval(image, text, split.labels)
    if not curves:
        return figures
    i2t = precision_recall_curve(image, split.labels, text, split.labels)
    t2i = precision_recall_curve(text, split.labels, image, split.labels)
    return figures, {"recall": i2t["recall"], "i2t": i2t["precision"], "t2i": t2i["precision"]}


def run_method(method, dataset, config, seed=0, source=None, callbacks=()):
    """Trains `method` on `dataset` (validation carved if absent) and measures the test split.

    Returns `(trained_model, result)`: result holds the test figures and precision-recall
    curves, the best validation average mAP, the epochs run, the seconds taken and each stage's
    validation curve. For "met" and "kim" without a given `source`, the `config.source_method`
    model is trained first under the same protocol (with `config.source_folds` > 1: the
    `out_of_fold_source` embeddings, whose fold histories go to result["source_folds"]).
    `callbacks` are added to every stage's `fit` (after the validation evaluation, so they
    see its logs).
    """
    dataset = dataset.with_validation(config.validation_fraction, seed=seed)
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    stages = {}
    if method in TRANSFER_METHODS and source is None and config.source_folds > 1:
        source = out_of_fold_source(dataset, config, seed, callbacks)
    elif method in TRANSFER_METHODS and source is None:
        source, stages["source"] = _train(
            build_model(config.source_method, dataset.num_classes, config), dataset, config,
            callbacks)
    out_of_fold = source if isinstance(source, OutOfFoldSource) else None
    if (out_of_fold is not None
            and out_of_fold.split_fingerprint != OutOfFoldSource.fingerprint(dataset.train)):
        raise ValueError("the OutOfFoldSource was made for another training split (another "
                         "seed or validation fraction); make it from this run's split")
    model, stages[method] = _train(build_model(method, dataset.num_classes, config, source),
                                   dataset, config, callbacks, out_of_fold)
    test, curves = measure_test_split(model.encoder, dataset.test, curves=True)
    result = {
        "method": method,
        "seed": seed,
        "test": test,
        "test_curves": curves,
        "best_val_avg_map": stages[method]["best_val_avg_map"],
        "epochs": stages[method]["epochs"],
        "seconds": time.perf_counter() - start,
        "history": stages,
    }
    if out_of_fold is not None:
        result["source_folds"] = out_of_fold.folds
    return model, result


def compare(methods, dataset, config, seeds, log=print):
    """Runs every method for seeds 0..seeds-1; returns the list of `run_method` results.

    Within a seed, "met" and "kim" transfer from the `config.source_method` model of that seed:
    the listed baseline when it comes first, else the one trained for the first of them (with
    `config.source_folds` > 1: the seed's `out_of_fold_source`, made once for both).
    `log` gets one line per run (None: silent).
    """
    unknown = [name for name in methods if name not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}.")
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}.")
    results = []
    for seed in range(seeds):
        source = None
        for method in methods:
            if method in TRANSFER_METHODS and source is None and config.source_folds > 1:
                source = out_of_fold_source(
                    dataset.with_validation(config.validation_fraction, seed=seed), config, seed)
            model, result = run_method(method, dataset, config, seed=seed, source=source)
            if method == config.source_method and config.source_folds == 1:
                source = model
            elif method in TRANSFER_METHODS and source is None:
                source = model.source
            results.append(result)
            if log is not None:
                test = result["test"]
                log(f"seed {seed} {method:<20} test I2T {test['i2t_map']:.4f} "
                    f"T2I {test['t2i_map']:.4f} avg {test['avg_map']:.4f} "
                    f"({result['epochs']} epochs, {result['seconds']:.0f} s)")
    return results


def _train(model, dataset, config, callbacks, source=None):
    history = fit_selected(model, dataset, config, callbacks, source)
    curve = [float(value) for value in history["val_avg_map"]]
    return model, {"epochs": len(curve), "best_val_avg_map": max(curve), "val_avg_map": curve,
                   "loss": [float(value) for value in history["loss"]]}


def summarize(results):
    """Mean and standard deviation over seeds of each method's test figures."""
    table = {}
    for method in dict.fromkeys(result["method"] for result in results):
        runs = [result for result in results if result["method"] == method]
        row = {"seeds": len(runs)}
        for key in ("i2t_map", "t2i_map", "avg_map"):
            values = np.array([run["test"][key] for run in runs])
            row[key] = float(values.mean())
            row[key + "_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        row["best_val_avg_map"] = float(np.mean([run["best_val_avg_map"] for run in runs]))
        table[method] = row
    return table


def format_table(table):
    """A plain-text table: test I2T / T2I / average mAP@all, mean +- std over seeds."""
    lines = [f"{'method':<20}{'seeds':>6}{'I2T mAP':>18}{'T2I mAP':>18}{'avg mAP':>18}"
             f"{'val avg':>9}"]
    for method, row in table.items():
        cells = "".join(f"{row[key]:>10.4f} +- {row[key + '_std']:.3f}"
                        for key in ("i2t_map", "t2i_map", "avg_map"))
        lines.append(f"{method:<20}{row['seeds']:>6}{cells}{row['best_val_avg_map']:>9.4f}")
    return "\n".join(lines)
