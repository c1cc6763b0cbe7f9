"""The method registry: one entry per trainable method, read by the protocol and the CLI.

Framework-free on purpose: `keras-cmr --help` lists the methods without importing Keras; a
build function imports the models it needs when it runs.
"""

import dataclasses

_METHODS = {}


@dataclasses.dataclass(frozen=True)
class Method:
    """One registered method.

    Attributes:
        name: the name `--method`, `compare` and the result tables use.
        build: `build(encoder, num_classes, config, source)` -> the trainable model. `encoder`
            is a fresh `CrossModalEncoder` of the protocol's towers, `config` the
            `TrainingConfig`, `source` None unless `needs_source` (then a source provider:
            `source.model` is the trained source, None when out-of-fold embeddings come with
            every batch through `source.inputs()`; see `keras_cmr.experiment.sources`).
        description: one line for `--help` and the result tables.
        needs_source: trains after a class-wise source (`config.source_method`), as MET does.
        serves_as_source: may be named as `config.source_method`.
        fit: None (the protocol's `fit_selected`: Adam, validation early stopping), or a
            callable `fit(model, dataset, config, callbacks, source)` returning a history dict
            with a "val_avg_map" list (one value per epoch or step; "loss" optional), for
            methods not trained by `model.fit` (closed-form baselines).
    """

    name: str
    build: object
    description: str
    needs_source: bool = False
    serves_as_source: bool = False
    fit: object = None


def register(name, build, description, *, needs_source=False, serves_as_source=False,
             fit=None):
    """Registers a method under `name` (after the ones already registered); returns its entry.

    See `Method` for the arguments. A name can be registered once (`unregister` it first to
    replace it).
    """
    if not isinstance(name, str) or not name.strip() or "," in name or name != name.strip():
        raise ValueError(f"a method name must be a non-empty string without commas or "
                         f"surrounding spaces, got {name!r}.")
    if name in _METHODS:
        raise ValueError(f"method {name!r} is already registered; unregister it first.")
    if not callable(build):
        raise TypeError(f"`build` of method {name!r} must be callable, got "
                        f"{type(build).__name__}.")
    if fit is not None and not callable(fit):
        raise TypeError(f"`fit` of method {name!r} must be callable or None, got "
                        f"{type(fit).__name__}.")
    if not isinstance(description, str) or "\n" in description or not description.strip():
        raise ValueError(f"the description of method {name!r} must be one non-empty line, got "
                         f"{description!r}.")
    if needs_source and serves_as_source:
        raise ValueError(f"method {name!r} cannot both need a source and serve as one.")
    method = Method(name, build, description, bool(needs_source), bool(serves_as_source), fit)
    _METHODS[name] = method
    return method


def unregister(name):
    """Removes the method `name` (as `get`, an unknown name is an error)."""
    get(name)
    del _METHODS[name]


def get(name):
    """The `Method` registered as `name`; an unknown name's error lists the known ones."""
    try:
        return _METHODS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {name!r}; choose from {available()}.") from None


def available():
    """The registered method names, in registration order."""
    return list(_METHODS)


def sources():
    """The names of the methods that may serve as `config.source_method`."""
    return [name for name, method in _METHODS.items() if method.serves_as_source]
