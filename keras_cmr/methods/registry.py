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
        needs_source: trains after a source (`config.source_method`), as MET does.
        serves_as_source: may be named as `config.source_method`: a trained two-tower model
            whose embeddings a transfer method learns from (the class-wise sources, and the
            naive sum, supervised InfoNCE and MRL, which read the pairing too).
        fit: None (the protocol's `fit_selected`: Adam, validation early stopping), or a
            callable `fit(model, dataset, config, callbacks, source)` returning a history dict
            with a "val_avg_map" list (one value per epoch or step; "loss" optional), for
            methods not trained by `model.fit` (closed-form baselines).
        options: None, or the type of the method's options: a frozen dataclass whose every
            field has a default and whose `__post_init__` checks the values. A config holds
            one instance per method (`TrainingConfig.method_options`, read from an experiment
            file's "method_options"); `build` reads it with `config.options_for(name)`.
    """

    name: str
    build: object
    description: str
    needs_source: bool = False
    serves_as_source: bool = False
    fit: object = None
    options: type = None


def register(name, build, description, *, needs_source=False, serves_as_source=False,
             fit=None, options=None):
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
    if options is not None:
        check_options_type(name, options)
    method = Method(name, build, description, bool(needs_source), bool(serves_as_source), fit,
                    options)
    _METHODS[name] = method
    return method


def check_options_type(name, options):
    """Raises TypeError unless `options` is a frozen dataclass type whose fields all have
    defaults (a config without options for the method uses them)."""
    params = getattr(options, "__dataclass_params__", None)
    if not isinstance(options, type) or params is None or not params.frozen:
        raise TypeError(f"the options of method {name!r} must be a frozen dataclass type, got "
                        f"{options!r}.")
    missing = [field.name for field in dataclasses.fields(options)
               if field.default is dataclasses.MISSING
               and field.default_factory is dataclasses.MISSING]
    if missing:
        raise TypeError(f"every option of method {name!r} needs a default; {missing} have "
                        "none.")


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
