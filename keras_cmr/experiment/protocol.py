"""One method's training under the shared protocol: build, fit with validation early
stopping on `val_avg_map` (the best epoch restored), measure the test split once.

A run whose loss becomes NaN or infinite, or whose selected weights rank no better than
chance, raises `keras_cmr.failures.TrainingFailure` (`keras_cmr.callbacks`). With several JAX
processes (`keras_cmr.distribution`), each stage is built and fitted inside `data_parallel()`,
every process feeding its own rows of each global batch of `config.batch_size` pairs (as the
run's `EpochPlan` says).
"""

import contextlib

import keras

from keras_cmr import distribution, methods
from keras_cmr.callbacks import StopOnCollapse, StopOnNonFiniteLoss
from keras_cmr.evaluation import RetrievalEvaluation, evaluate_retrieval, precision_recall_curve
from keras_cmr.experiment.epochs import ShuffledEpochs
from keras_cmr.experiment.sources import as_source
from keras_cmr.models import CrossModalEncoder


def make_encoder(config, name=None):
    return CrossModalEncoder.projection(config.embedding_dim, hidden_dims=config.hidden_dims,
                                        dropout=config.dropout,
                                        input_dropout=config.input_dropout, name=name)


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


def fit_selected(model, dataset, config, callbacks=(), source=None, check_collapse=True, *,
                 plan=None, steps=None):
    """Fits with validation early stopping on `val_avg_map`; restores the best epoch.

    `source`: a source whose `inputs()` (out-of-fold embeddings) go with the training pairs.
    Raises `TrainingFailure` when the loss becomes NaN or inf, and (with `check_collapse`)
    when the restored best weights collapsed on the validation split (`StopOnCollapse`;
    without its chance test when `dataset` has label noise).
    The out-of-fold fold sources pass `check_collapse=False`: a fold source is an
    intermediate whose few epochs may legitimately rank near chance (our measurement: 2-epoch
    fold sources on the digits score exactly chance), and the model built on it is checked.
    `plan`: the run's `EpochPlan` (default `ShuffledEpochs()`), which gives the stage its
    batches, their callbacks and its history. `steps`: a `CompiledSteps` whose earlier models
    of the same computation lend this one their compiled steps (as `compare` does), or None.
    """
    plan = ShuffledEpochs() if plan is None else plan
    model.compile(optimizer=config.optimizer(), jit_compile=config.jit_compile)
    train, val = dataset.train, dataset.val
    evaluation = RetrievalEvaluation(val.image, val.text, val.labels)
    stopping = keras.callbacks.EarlyStopping(monitor="val_avg_map", mode="max",
                                             patience=config.patience,
                                             restore_best_weights=True)
    # Noisy validation labels can put a model that learned near their chance level.
    checks = ([StopOnCollapse(val, check_chance=dataset.label_noise is None)]
              if check_collapse else [])
    inputs = {"image": train.image, "text": train.text}
    if source is not None:
        inputs.update(as_source(source).inputs())
    inputs = model.training_inputs(inputs, train.labels)
    model.build_for(inputs)
    feed = plan.stage(model, inputs, train.labels, config.batch_size, stopping)
    lent = None if steps is None else steps.lend(model, config)
    history = model.fit(
        **feed.data, epochs=config.epochs,
        callbacks=[*([lent] if lent else []), StopOnNonFiniteLoss(), evaluation, stopping,
                   *checks, *feed.callbacks, *callbacks],
        verbose=config.verbose,
    )
    return feed.history(history.history)


def stage_scope():
    """`distribution.data_parallel()` when several processes train together, else nothing."""
    if distribution.process_count() > 1:
        return distribution.data_parallel()
    return contextlib.nullcontext()


def train_selected(method, dataset, config, callbacks=(), source=None, check_collapse=True, *,
                   seed, plan=None, steps=None):
    """One training stage: seeds every random generator with `seed`, then builds and fits
    `method` (its own `fit`, else `fit_selected` with `check_collapse`, `plan` and `steps`)
    inside `stage_scope()`.

    Every stage of a run (its source, each out-of-fold source, the method) starts here, from
    the run's seed: a stage's model does not depend on what was trained before it.

    Returns `(model, stage)`: stage holds the epochs run, the best validation avg mAP, the
    validation curve and the loss curve.
    """
    entry = methods.get(method)
    source = source if entry.needs_source else None
    keras.utils.set_random_seed(seed)
    with stage_scope():
        model = build_model(method, dataset.num_classes, config, source)
        if entry.fit is None:
            history = fit_selected(model, dataset, config, callbacks, source, check_collapse,
                                   plan=plan, steps=steps)
        else:
            history = entry.fit(model, dataset, config, callbacks, source)
    if not history.get("val_avg_map"):
        raise ValueError(f"the fit of method {method!r} returned no 'val_avg_map' history; "
                         f"got keys {sorted(history)}.")
    curve = [float(value) for value in history["val_avg_map"]]
    return model, {"epochs": len(curve), "best_val_avg_map": max(curve), "val_avg_map": curve,
                   "loss": [float(value) for value in history.get("loss", [])]}


def with_train(dataset, train):
    """`dataset` with another training split (same validation and test splits)."""
    return dataset.with_splits(train, dataset.val, allow_unseen_classes=True)


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
