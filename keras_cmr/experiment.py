"""Train and compare methods under one protocol: same towers, optimiser, budget, selection.

Every method is selected by early stopping on the validation average mAP (never the test
split); the test split is embedded once, by the selected weights.
"""

import dataclasses
import time

import keras
import numpy as np

from keras_cmr import losses
from keras_cmr.evaluation import RetrievalEvaluation, evaluate_retrieval
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
    "contrastive": "pair-wise only: contrastive loss, hard labels (Hadsell)",
    "triplet": "pair-wise only: triplet loss, hardest negative (VSE++)",
    "infonce": "pair-wise only: symmetric InfoNCE (CLIP)",
    "supervised_infonce": "pair-wise only: supervised InfoNCE (same-class pairs positive)",
    "naive_sum": "class-wise cross-entropy + contrastive loss, summed in one model",
    "dscmr": "DSCMR: label regression + pairwise likelihood + modality invariance",
    "kim": "embedding transfer with a fixed margin (Kim et al., CVPR 2021)",
    "met": "MET: embedding transfer, relaxed labels and relaxed margins (soft contrastive)",
}
METHODS = tuple(METHOD_DESCRIPTIONS)


@dataclasses.dataclass
class TrainingConfig:
    """The shared protocol (METHOD.md): Adam, lr 1e-4, beta_1 0.5, patience 10."""

    epochs: int = 200
    batch_size: int = 100
    learning_rate: float = 1e-4
    beta_1: float = 0.5
    patience: int = 10
    embedding_dim: int = 256
    hidden_dims: tuple = (256,)
    dropout: float = 0.1
    validation_fraction: float = 0.1
    scale: float = 16.0
    soft_contrastive: dict = dataclasses.field(default_factory=dict)
    verbose: int = 1

    def __post_init__(self):
        for name in ("epochs", "batch_size", "patience", "embedding_dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"`{name}` must be a positive integer, got "
                                 f"{getattr(self, name)!r}.")
        if self.learning_rate <= 0:
            raise ValueError(f"`learning_rate` must be positive, got {self.learning_rate!r}.")
        self.hidden_dims = tuple(self.hidden_dims)


def make_encoder(config, name=None):
    return CrossModalEncoder.projection(config.embedding_dim, hidden_dims=config.hidden_dims,
                                        dropout=config.dropout, name=name)


def build_model(method, num_classes, config, source=None):
    """The trainable model of `method`; transfer methods need the trained `source`."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {list(METHODS)}.")
    encoder = make_encoder(config, name=f"{method}_encoder")
    if method == "source":
        return SourceModel(encoder, num_classes, head="cosine", scale=config.scale)
    if method == "source_pcl":
        return SourceModel(encoder, num_classes, head="prototype")
    if method in PAIR_LOSSES:
        return PairwiseModel(encoder, PAIR_LOSSES[method]())
    if method == "naive_sum":
        return SourceModel(encoder, num_classes, scale=config.scale,
                           pair_loss=losses.ContrastiveLoss())
    if method == "dscmr":
        return DSCMRModel(encoder, num_classes)
    if source is None:
        raise ValueError(f"method {method!r} transfers from a trained source model; pass it.")
    options = dict(config.soft_contrastive)
    if method == "kim":
        options["margin"] = "fixed"
    return TransferModel(encoder, source, losses.SoftContrastiveLoss(**options))


def fit_selected(model, dataset, config, callbacks=()):
    """Fits with validation early stopping on `val_avg_map`; restores the best epoch."""
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1))
    train, val = dataset.train, dataset.val
    evaluation = RetrievalEvaluation(val.image, val.text, val.labels)
    stopping = keras.callbacks.EarlyStopping(monitor="val_avg_map", mode="max",
                                             patience=config.patience,
                                             restore_best_weights=True)
    history = model.fit(
        {"image": train.image, "text": train.text}, train.labels,
        batch_size=config.batch_size, epochs=config.epochs, shuffle=True,
        callbacks=[evaluation, stopping, *callbacks], verbose=config.verbose,
    )
    return history.history


def measure_test_split(encoder, split):
    """I2T / T2I figures of `encoder` on a split (the test split: read once per model)."""
    return evaluate_retrieval(encoder.encode_image(split.image), encoder.encode_text(split.text),
                              split.labels)


def run_method(method, dataset, config, seed=0, source=None, callbacks=()):
    """Trains `method` on `dataset` (validation carved if absent) and measures the test split.

    Returns `(trained_model, result)`: result holds the test figures, the best validation
    average mAP, the epochs run and the seconds taken. For "met" and "kim" without a given
    `source`, the source model is trained first under the same protocol. `callbacks` are
    added to every stage's `fit` (after the validation evaluation, so they see its logs).
    """
    dataset = dataset.with_validation(config.validation_fraction, seed=seed)
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    stages = {}
    if method in ("met", "kim") and source is None:
        source, stages["source"] = _train(build_model("source", dataset.num_classes, config),
                                          dataset, config, callbacks)
    model, stages[method] = _train(build_model(method, dataset.num_classes, config, source),
                                   dataset, config, callbacks)
    result = {
        "method": method,
        "seed": seed,
        "test": measure_test_split(model.encoder, dataset.test),
        "best_val_avg_map": stages[method]["best_val_avg_map"],
        "epochs": stages[method]["epochs"],
        "seconds": time.perf_counter() - start,
        "history": stages,
    }
    return model, result


def _train(model, dataset, config, callbacks):
    history = fit_selected(model, dataset, config, callbacks)
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
