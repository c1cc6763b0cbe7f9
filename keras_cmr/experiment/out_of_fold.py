"""Out-of-fold source embeddings: each training pair embedded by a source that never saw it."""

import time

import numpy as np

from keras_cmr.datasets import stratified_folds
from keras_cmr.experiment.protocol import train_selected, with_train
from keras_cmr.experiment.sources import OutOfFoldSource


def out_of_fold_source(dataset, config, seed=0, callbacks=(), *, plan=None, steps=None):
    """Cross-fitted source embeddings of `dataset.train` (validation split already carved).

    A class-wise source on every training pair embeds, in training, pairs it has fitted: on a
    small data set its cross-modal similarities then restate the hard labels. Here the
    training pairs are split into `config.source_folds` class-stratified folds
    (`stratified_folds`, seeded by `seed`); the k-th `config.source_method` model trains on
    every pair outside fold k (early stopping on the shared validation split) and embeds
    fold k. The test split is not read. Each fold is a stage of `train_selected` seeded
    with `seed`, fitted with `callbacks`, `plan` and `steps` (as `fit_selected`).

    Returns:
        An `OutOfFoldSource`, to pass as `source` to `run_method` or `build_model`.
    """
    if config.source_folds < 2:
        raise ValueError(f"out-of-fold sources need config.source_folds >= 2, got "
                         f"{config.source_folds}.")
    if dataset.val is None:
        raise ValueError("carve the validation split first (dataset.with_validation): the "
                         "fold sources stop early on it.")
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
        model, history = train_selected(config.source_method,
                                        with_train(dataset, train.take(inside)), config,
                                        callbacks, check_collapse=False, seed=seed, plan=plan,
                                        steps=steps)
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
