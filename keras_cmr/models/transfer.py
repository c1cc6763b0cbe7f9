"""Embedding transfer: a fresh target encoder learns pair-wise from a frozen source."""

import keras
import numpy as np
from keras import ops

from keras_cmr.distribution import gather_global_batch, replica_share
from keras_cmr.losses import SoftContrastiveLoss
from keras_cmr.losses.label_trust import label_agreement
from keras_cmr.models.encoder import CrossModalEncoder, CrossModalTrainer

PRECOMPUTED_KEYS = ("source_image", "source_text")
TRUST_KEY = "label_trust"
_NO_SOURCE = ("TransferModel has no source model: every batch must bring precomputed source "
              "embeddings, fit({'image': ..., 'text': ..., 'source_image': ..., "
              "'source_text': ...}, labels)")


@keras.saving.register_keras_serializable(package="keras_cmr")
class TransferModel(CrossModalTrainer):
    """MET stage 2: the target encoder trained by the soft contrastive loss.

    The frozen source (a trained `SourceModel` or its encoder) embeds each batch in
    inference mode; its embeddings give the relaxed labels and margins of the soft
    contrastive loss, and no gradient reaches it. Under data-parallel training each device
    embeds its slice and the loss compares the pairs of the global batch
    (`keras_cmr.distribution`). After training, `model.encoder` (also `model.target`) is the
    whole retrieval model: save it alone for serving.

    Example:

    ```python
    transfer = TransferModel(CrossModalEncoder.projection(64), source_model)
    transfer.compile(optimizer=keras.optimizers.Adam(1e-4, beta_1=0.5))
    transfer.fit({"image": x_img, "text": x_txt}, labels, batch_size=100)
    transfer.target.save("target.keras")
    ```

    Precomputed source embeddings (e.g. out-of-fold ones from
    `keras_cmr.experiment.out_of_fold_source`, where each pair is embedded by a source that
    never trained on it) replace the source model: pass them as two more inputs,
    `fit({"image": ..., "text": ..., "source_image": s, "source_text": t}, labels)`, with
    `source=None` (or with a source, which they then override).

    With a loss of trust="agreement" (`SoftContrastiveOptions.trust`), every batch also
    brings each pair's agreement a_i, the input "label_trust": `with_label_trust(x, labels)`
    computes it over the whole training set (the protocol does so through
    `training_inputs`).

    Args:
        target: the fresh `CrossModalEncoder` to train (any tower shapes).
        source: the trained source, a `CrossModalTrainer` or a `CrossModalEncoder`. Its
            encoder is frozen in place (`trainable = False`) and kept as `model.source`.
            None: every batch brings its source embeddings as inputs (see above).
        transfer_loss: the loss, `SoftContrastiveLoss()` (METHOD.md defaults) when None.
    """

    serialized_children = ("encoder", "source", "transfer_loss")

    def __init__(self, encoder, source=None, transfer_loss=None, **kwargs):
        super().__init__(encoder, **kwargs)
        if isinstance(source, CrossModalTrainer):
            source = source.encoder
        if source is not None and not isinstance(source, CrossModalEncoder):
            raise TypeError(
                "`source` must be a trained keras_cmr SourceModel or CrossModalEncoder (or None "
                f"with precomputed source embeddings), got {type(source).__name__}."
            )
        if source is not None:
            # On TensorFlow, Keras does not pass `trainable=False` down to sublayers when the
            # model already reads False (a source rebuilt from a saved config whose towers
            # made trainable sublayers); switching it on first makes every sublayer follow.
            source.trainable = True
            source.trainable = False
        self.source = source
        self.transfer_loss = SoftContrastiveLoss() if transfer_loss is None else transfer_loss

    def build(self, input_shape):
        super().build(input_shape)
        if self.source is not None and not self.source.built:  # rebuilt from a saved config
            self.source.build(input_shape)

    @property
    def uses_label_trust(self):
        """Whether the loss weighs each pair's hard label by its agreement (trust="agreement")."""
        return (isinstance(self.transfer_loss, SoftContrastiveLoss)
                and self.transfer_loss.options.trust == "agreement")

    def with_label_trust(self, x, labels):
        """`x` (a dict of arrays, one row per training pair) with x["label_trust"]: the
        source's agreement with each pair's label (`keras_cmr.losses.label_trust.
        label_agreement`, at the loss's trust_temperature), from x's precomputed source
        embeddings, else from the source model's embeddings of x's pairs.

        The class means behind it are those of x's pairs: pass the whole training set, not a
        batch. An x that already holds "label_trust" is returned as is.
        """
        if TRUST_KEY in x:
            return x
        if all(key in x for key in PRECOMPUTED_KEYS):
            image, text = x["source_image"], x["source_text"]
        elif self.source is None:
            raise ValueError(_NO_SOURCE)
        else:
            image, text = self.source.encode_image(x["image"]), self.source.encode_text(x["text"])
        agreement = label_agreement(image, text, labels,
                                    temperature=self.transfer_loss.options.trust_temperature)
        return {**x, TRUST_KEY: np.asarray(ops.convert_to_numpy(agreement), "float32")}

    def training_inputs(self, x, labels):
        return self.with_label_trust(x, labels) if self.uses_label_trust else x

    @property
    def target(self):
        """The trained target encoder: what retrieval uses and what to save for serving."""
        return self.encoder

    def _check_fit_arrays(self, x, y, batch_size):
        super()._check_fit_arrays(x, y, batch_size)
        given = [key for key in PRECOMPUTED_KEYS if key in x]
        if given and len(given) < 2:
            raise ValueError(f"fit: pass both {PRECOMPUTED_KEYS} (precomputed source "
                             f"embeddings) or neither; received only {given[0]!r}")
        if not given and self.source is None:
            raise ValueError(_NO_SOURCE)
        for key in given:
            array = np.asarray(x[key])
            if array.ndim != 2 or len(array) != len(x["image"]):
                raise ValueError(f"fit: {key} must be a 2-D array with one row per pair "
                                 f"({len(x['image'])}); received shape {array.shape}")
            if not np.all(np.isfinite(array)):
                row = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
                raise ValueError(f"fit: {key} row {row} holds NaN or inf")
        self._check_label_trust(x)

    def _check_label_trust(self, x):
        if TRUST_KEY not in x:
            if self.uses_label_trust:
                raise ValueError('fit: the transfer loss has trust="agreement", so x needs '
                                 '"label_trust", the source\'s agreement with each pair\'s '
                                 "label: fit(model.with_label_trust(x, labels), labels)")
            return
        if not self.uses_label_trust:
            raise ValueError('fit: x holds "label_trust", but the transfer loss does not use '
                             'it (trust="global"); leave it out or set trust="agreement"')
        array = np.asarray(x[TRUST_KEY])
        if array.ndim != 1 or len(array) != len(x["image"]):
            raise ValueError(f"fit: label_trust must be a 1-D array with one value per pair "
                             f"({len(x['image'])}); received shape {array.shape}")
        outside = np.flatnonzero(~((array >= 0) & (array <= 1)))
        if len(outside):
            row = int(outside[0])
            raise ValueError(f"fit: label_trust row {row} is {array[row]!r}, outside [0, 1]")

    def training_loss(self, x, labels, embeddings, training):
        if all(key in x for key in PRECOMPUTED_KEYS):
            source = {"image": x["source_image"], "text": x["source_text"]}
        elif self.source is None:
            raise ValueError(_NO_SOURCE)
        else:
            source = self.source(x, training=False)
        y_pred = {
            "image": embeddings["image"],
            "text": embeddings["text"],
            "source_image": ops.stop_gradient(source["image"]),
            "source_text": ops.stop_gradient(source["text"]),
        }
        if TRUST_KEY in x:
            y_pred[TRUST_KEY] = x[TRUST_KEY]
        labels, y_pred = gather_global_batch((labels, y_pred))
        return replica_share(self.transfer_loss, self.transfer_loss(labels, y_pred))
