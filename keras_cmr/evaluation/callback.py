"""`RetrievalEvaluation`: validation mAP in the training logs, for early stopping on it."""

import keras

from keras_cmr.evaluation.embedding import embed_pairs
from keras_cmr.evaluation.metrics import evaluate_retrieval
from keras_cmr.evaluation.plan import metric_plan
from keras_cmr.utils.checks import check_positive_int


class RetrievalEvaluation(keras.callbacks.Callback):
    """Evaluates image <-> text retrieval on validation data at the end of epochs.

    At the end of the first epoch of each `fit` and of every epoch whose number (counted from 1)
    is a multiple of `every_n_epochs` (epochs 1, N, 2N, ...), the callback embeds the validation
    pairs with
    `self.model.predict({"image": image, "text": text})`, which must return a dict with the
    embeddings under "image" and "text", runs `evaluate_retrieval` and writes
    `<prefix>i2t_<key>`, `<prefix>t2i_<key>` and `<prefix>avg_<key>` into the epoch's `logs`
    (e.g. "val_i2t_map", "val_t2i_map", "val_avg_map"; "val_avg_map@K" with `top_k`).

    Keras calls callbacks in list order with one shared `logs` dict, so place this callback
    BEFORE the ones that read its keys:

        callbacks=[RetrievalEvaluation(x_img, x_txt, y),
                   keras.callbacks.EarlyStopping(monitor="val_avg_map", mode="max", patience=10),
                   keras.callbacks.ModelCheckpoint(path, monitor="val_avg_map", mode="max",
                                                   save_best_only=True)]

    On skipped epochs the last computed values are written again, so a monitor never sees a
    missing key; they count as "no improvement", so EarlyStopping's patience is in epochs, not
    in evaluations. Give monitors `mode="max"`: in "auto" mode Keras would minimise a name
    without "acc" or "auc" in it. The model's History receives the keys as well.

    Args:
        image, text: validation inputs of the two towers, paired row for row.
        labels: labels of the pairs: (N,) class ids or (N, L) multi-hot.
        every_n_epochs: evaluate every this many epochs (>= 1).
        prefix: prefix of the log keys.
        metrics, top_k, k_values: as in `evaluate_retrieval`.
        batch_size: prediction batch size.
        verbose: 1 prints the values after each evaluation.

    Attributes:
        history: {"epoch": [0-based epochs evaluated], "<prefix>i2t_map": [...], ...}, one
            entry per evaluation of the latest `fit`.

    Raises:
        ValueError: for `every_n_epochs` < 1 or unknown metrics; at an evaluation, when the
            model's prediction is not a dict with "image" and "text", or as
            `evaluate_retrieval` does.
    """

    def __init__(
        self,
        image,
        text,
        labels,
        every_n_epochs=1,
        prefix="val_",
        metrics=("map",),
        batch_size=256,
        verbose=0,
        top_k=None,
        k_values=(1, 5, 10),
    ):
        super().__init__()
        every_n_epochs = check_positive_int(every_n_epochs, "`every_n_epochs`")
        metric_plan(metrics, top_k, k_values)  # bad metric names fail now, not after an epoch
        self.image = image
        self.text = text
        self.labels = labels
        self.every_n_epochs = every_n_epochs
        self.prefix = prefix
        self.metrics = metrics
        self.batch_size = batch_size
        self.verbose = verbose
        self.top_k = top_k
        self.k_values = k_values
        self.history = {}
        self._last = {}

    def on_train_begin(self, logs=None):
        # A new fit must not carry the previous fit's values into its first epochs.
        self.history = {}
        self._last = {}

    def evaluate(self):
        """Embeds the validation data with the current model; returns the prefixed results."""
        image, text = embed_pairs(self.model, self.image, self.text, self.batch_size)
        results = evaluate_retrieval(
            image,
            text,
            self.labels,
            metrics=self.metrics,
            top_k=self.top_k,
            k_values=self.k_values,
        )
        return {f"{self.prefix}{key}": value for key, value in results.items()}

    def on_epoch_end(self, epoch, logs=None):
        if not self._last or (epoch + 1) % self.every_n_epochs == 0:
            self._last = self.evaluate()
            self.history.setdefault("epoch", []).append(epoch)
            for key, value in self._last.items():
                self.history.setdefault(key, []).append(value)
            if self.verbose:
                shown = " - ".join(f"{key}: {value:.4f}" for key, value in self._last.items())
                print(f"Epoch {epoch + 1}: {shown}")
        if logs is not None:
            logs.update(self._last)
