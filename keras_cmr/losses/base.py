"""The base of the loss classes: labels as y_true, a dict of named tensors as y_pred."""

import keras


def unpack(y_pred, keys, loss_name):
    """The tensors of `y_pred` (a dict) under `keys`, with a clear error when one is missing."""
    if not isinstance(y_pred, dict):
        raise ValueError(
            f"{loss_name} expects y_pred to be a dict with keys {list(keys)}; received "
            f"{type(y_pred).__name__}"
        )
    missing = [key for key in keys if key not in y_pred]
    if missing:
        raise ValueError(
            f"{loss_name} expects y_pred to be a dict with keys {list(keys)}; missing "
            f"{missing} (received keys {sorted(y_pred)})"
        )
    return [y_pred[key] for key in keys]


def on_dict(function, keys, loss_name):
    """`fn(labels, y_pred, **options)` for `DictLossWrapper`: `function` of the tensors of
    `y_pred` under `keys` (in its argument order), `labels=labels` and the options."""
    def call(labels, y_pred, **options):
        return function(*unpack(y_pred, keys, loss_name), labels=labels, **options)

    return call


def with_learned_temperature(y_pred, options):
    """`options` with y_pred["temperature"] (a model's learned one) replacing the configured."""
    if "temperature" in y_pred:
        return {**options, "temperature": y_pred["temperature"]}
    return options


class DictLossWrapper(keras.losses.Loss):
    """Base of the loss classes: y_true = labels (or None), y_pred = a dict of named tensors.

    `fn(labels, y_pred, **options)` unpacks the dict and returns per-anchor losses (batch,);
    the `Loss` reduction then applies `sample_weight` and averages. The options are kept as
    attributes and returned by `get_config`, so they must be the subclass' constructor args.
    (keras' LossFunctionWrapper is not public API, and its `call` matches y_true's rank to
    y_pred's, which a dict cannot do.)
    """

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **options):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.fn = fn
        self._options = options
        for key, value in options.items():
            setattr(self, key, value)

    def __call__(self, y_true=None, y_pred=None, sample_weight=None):
        # Loss.__call__ converts y_true to a tensor, which None cannot be: an empty dict
        # travels through instead and `call` turns it back into None.
        y_true = {} if y_true is None else y_true
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    @staticmethod
    def labels_of(y_true):
        """The labels of `call`'s y_true: None where `__call__` sent an empty dict."""
        return None if isinstance(y_true, dict) and not y_true else y_true

    def call(self, y_true, y_pred):
        return self.fn(self.labels_of(y_true), y_pred, **self._options)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction,
                "dtype": self._dtype_policy.name, **self._options}
