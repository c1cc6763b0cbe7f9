"""Closed-form baselines as methods: regularised CCA and label-space ridge regression.

Both are solved on the training split (`keras_cmr.linear`) once per point of a small grid;
the point with the best validation average mAP is kept (the first on a tie). The test split
is never read for the choice. The run's "val_avg_map" curve has one value per grid point, in
the grid's order (`CCA_GRID`, `RIDGE_ALPHAS`), so `epochs` in a result counts grid points.
Training callbacks do not apply (no epochs) and are ignored; `embedding_dim`, towers and
optimiser settings of the config do not apply either, except that CCA keeps at most
`embedding_dim` canonical pairs.

Framework-free at import, as every method module: Keras loads when a method runs.
"""

import itertools

from keras_cmr.methods.registry import register

# Shrinkage r of both covariances (`keras_cmr.linear.cca`; r > 0 keeps them invertible) times
# the correlation power p of Gong et al. (IJCV 2014; p = 4 is the value they report helped
# cosine retrieval, p = 0 plain CCA). A small grid of our choosing, not tuned on test.
CCA_REGULARIZATIONS = (0.001, 0.01, 0.1, 0.5)
CCA_POWERS = (0.0, 4.0)
CCA_GRID = tuple(itertools.product(CCA_REGULARIZATIONS, CCA_POWERS))
# Ridge penalties, a log grid of our choosing around scikit-learn's default 1.0.
RIDGE_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


def build_closed_form(encoder, num_classes, config, source):
    """An empty `ClosedFormModel`; the method's fit sets its encoder (`encoder` is unused:
    a closed-form solution has its own linear towers)."""
    from keras_cmr.models import ClosedFormModel

    return ClosedFormModel()


def select_on_validation(model, dataset, candidates):
    """Keeps in `model` the candidate encoder of best validation average mAP.

    Args:
        model: the `ClosedFormModel` to fill.
        dataset: a `CrossModalDataset` with a validation split.
        candidates: iterable of zero-argument functions, each returning a fitted encoder.

    Returns:
        The history dict {"val_avg_map": [one value per candidate]}.
    """
    from keras_cmr.evaluation import evaluate_retrieval

    if dataset.val is None:
        raise ValueError("a closed-form method selects on the validation split: carve one "
                         "first (dataset.with_validation)")
    val, curve, best = dataset.val, [], None
    for make_encoder in candidates:
        encoder = make_encoder()
        score = evaluate_retrieval(encoder.encode_image(val.image), encoder.encode_text(val.text),
                                   val.labels)["avg_map"]
        curve.append(float(score))
        if best is None or score > best[0]:
            best = (score, encoder)
    model.set_encoder(best[1])
    return {"val_avg_map": curve}


def fit_cca(model, dataset, config, callbacks, source):
    """Regularised CCA on the training pairs, (r, p) chosen from `CCA_GRID` on validation."""
    from keras_cmr import linear

    dim = min(config.embedding_dim, dataset.image_dim, dataset.text_dim)
    return select_on_validation(model, dataset, [
        lambda r=r, p=p: linear.fit_cca(dataset, dim, regularization=r, eigenvalue_power=p)
        for r, p in CCA_GRID])


def fit_label_regression(model, dataset, config, callbacks, source):
    """Ridge maps of both modalities onto the labels, alpha chosen from `RIDGE_ALPHAS` on
    validation."""
    from keras_cmr import linear

    return select_on_validation(model, dataset, [
        lambda alpha=alpha: linear.fit_label_regression(dataset, alpha=alpha)
        for alpha in RIDGE_ALPHAS])


register("cca", build_closed_form,
         "regularised CCA (Hotelling 1936; Rasiwasia et al. 2010), correlation power of "
         "Gong et al. 2014, chosen on validation", fit=fit_cca)
register("label_regression", build_closed_form,
         "ridge regression of each modality onto its labels, semantic matching as in "
         "Rasiwasia et al. 2010, alpha chosen on validation", fit=fit_label_regression)
