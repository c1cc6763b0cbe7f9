"""One method's training under the shared protocol: build, fit with validation early
stopping on `val_avg_map` (the best epoch restored), measure the test split once."""

import keras

from keras_cmr import methods
from keras_cmr.datasets import CrossModalDataset
from keras_cmr.evaluation import RetrievalEvaluation, evaluate_retrieval, precision_recall_curve
from keras_cmr.experiment.sources import as_source
from keras_cmr.models import CrossModalEncoder


def make_encoder(config, name=None):
    return CrossModalEncoder.projection(config.embedding_dim, hidden_dims=config.hidden_dims,
                                        dropout=config.dropout, name=name)


def build_model(method, num_classes, config, source=None):
    """The trainable model of the registered `method` (`keras_cmr.methods`).

    `source`: for a method that needs one (`needs_source`: "met", "kim"), the trained source
    model, an `OutOfFoldSource` or a `TrainedSource`; ignored by the others.
    """
    entry = methods.get(method)
    source = as_source(source) if entry.needs_source else None
    if entry.needs_source and source is None:
        raise ValueError(f"method {method!r} transfers from a trained source model (or an "
                         "OutOfFoldSource); pass it.")
    return entry.build(make_encoder(config, name=f"{method}_encoder"), num_classes, config,
                       source)


def fit_selected(model, dataset, config, callbacks=(), source=None):
    """Fits with validation early stopping on `val_avg_map`; restores the best epoch.

    `source`: a source whose `inputs()` (out-of-fold embeddings) go with the training pairs.
    """
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1))
    train, val = dataset.train, dataset.val
    evaluation = RetrievalEvaluation(val.image, val.text, val.labels)
    stopping = keras.callbacks.EarlyStopping(monitor="val_avg_map", mode="max",
                                             patience=config.patience,
                                             restore_best_weights=True)
    inputs = {"image": train.image, "text": train.text}
    if source is not None:
        inputs.update(as_source(source).inputs())
    history = model.fit(
        inputs, train.labels,
        batch_size=config.batch_size, epochs=config.epochs, shuffle=True,
        callbacks=[evaluation, stopping, *callbacks], verbose=config.verbose,
    )
    return history.history


def train_selected(method, dataset, config, callbacks=(), source=None):
    """Builds and fits `method` (its own `fit`, else `fit_selected`).

    Returns `(model, stage)`: stage holds the epochs run, the best validation avg mAP, the
    validation curve and the loss curve.
    """
    entry = methods.get(method)
    source = source if entry.needs_source else None
    model = build_model(method, dataset.num_classes, config, source)
    fit = entry.fit or fit_selected
    history = fit(model, dataset, config, callbacks, source)
    if not history.get("val_avg_map"):
        raise ValueError(f"the fit of method {method!r} returned no 'val_avg_map' history; "
                         f"got keys {sorted(history)}.")
    curve = [float(value) for value in history["val_avg_map"]]
    return model, {"epochs": len(curve), "best_val_avg_map": max(curve), "val_avg_map": curve,
                   "loss": [float(value) for value in history.get("loss", [])]}


def with_train(dataset, train):
    """`dataset` with another training split (same validation and test splits)."""
    return CrossModalDataset(train=train, val=dataset.val, test=dataset.test,
                             num_classes=dataset.num_classes, class_names=dataset.class_names,
                             name=dataset.name, allow_unseen_classes=True)


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
