"""The training job of tests/distribution/test_processes.py, run in each process.

`python tests/distribution/multiprocess_job.py WEIGHTS OUTPUT` joins the job described by the
KERAS_DISTRIBUTION_* variables, trains MET stage 2 (`TransferModel`) and a `SourceModel` with a
pair-wise term for 3 SGD steps on its rows of the global batches, evaluates validation mAP
after the epoch, and prints one JSON line; only the chief writes OUTPUT (the final weights; a
"{process}" in it is replaced by the writer's process index).
The parent imports the same functions for its one-process reference run.
"""

import json
import os
import sys

import keras
import numpy as np

GLOBAL_BATCH = 16
NUM_PAIRS = 48
SHAPES = {"image": (None, 6), "text": (None, 5)}
KINDS = ("transfer", "source")


def make_data():
    """Training pairs (48) and validation pairs (10, not a multiple of any device count)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=NUM_PAIRS + 10)
    centres = rng.normal(size=(4, 6))
    image = (centres[labels] + rng.normal(size=(len(labels), 6))).astype("float32")
    text = (centres[labels][:, :5] + rng.normal(size=(len(labels), 5))).astype("float32")
    train = ({"image": image[:NUM_PAIRS], "text": text[:NUM_PAIRS]}, labels[:NUM_PAIRS])
    val = (image[NUM_PAIRS:], text[NUM_PAIRS:], labels[NUM_PAIRS:])
    return train, val


def build(kind):
    """MET stage 2 over a prototype source, or a source model with a summed pair-wise term."""
    from keras_cmr import losses
    from keras_cmr.models import CrossModalEncoder, SourceModel, TransferModel

    def encoder(name):
        return CrossModalEncoder.projection(8, hidden_dims=(16,), dropout=0.0, name=name)

    if kind == "transfer":
        source = SourceModel(encoder("source_encoder"), 4, head="prototype")
        source.build(SHAPES)
        model = TransferModel(encoder("target"), source,
                              losses.SoftContrastiveLoss(intra_modal_weight=0.5))
    else:
        model = SourceModel(encoder("target"), 4, pair_loss_weight=1 / GLOBAL_BATCH,
                            pair_loss=losses.ContrastiveLoss(reduction="sum"))
    model.build(SHAPES)
    # SGD: a wrong factor in the gradients would show (Adam normalises it away).
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    return model


class FirstLoss(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            self.loss = float(logs["loss"])


def train(model, x, labels, batch_size, val):
    """One epoch without shuffling; (first step's loss, validation avg mAP, weights)."""
    from keras_cmr.evaluation import RetrievalEvaluation

    first_loss, evaluation = FirstLoss(), RetrievalEvaluation(*val)
    stopping = keras.callbacks.EarlyStopping(monitor="val_avg_map", mode="max", patience=1,
                                             restore_best_weights=True)
    model.fit(x, labels, batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
              callbacks=[first_loss, evaluation, stopping])
    return (first_loss.loss, evaluation.history["val_avg_map"][0],
            [keras.ops.convert_to_numpy(v) for v in model.weights])


def main(weights_path, output_path):
    from keras_cmr import distribution

    distribution.initialize_processes()  # from the KERAS_DISTRIBUTION_* variables
    (x, labels), val = make_data()
    rows = distribution.process_rows(NUM_PAIRS, GLOBAL_BATCH)
    initial = np.load(weights_path)
    report, final = {"process": distribution.process_index(),
                     "processes": distribution.process_count()}, {}
    with distribution.data_parallel():
        report["batch_multiple"] = distribution.batch_multiple()
        for kind in KINDS:
            model = build(kind)
            model.set_weights([initial[f"{kind}_{i}"] for i in range(len(model.weights))])
            loss, val_map, weights = train(
                model, {key: value[rows] for key, value in x.items()}, labels[rows],
                GLOBAL_BATCH // distribution.process_count(), val)
            report[kind] = {"loss": loss, "val_avg_map": val_map,
                            "weights_sum": float(sum(np.abs(w).sum() for w in weights))}
            final.update({f"{kind}_{i}": w for i, w in enumerate(weights)})
    if distribution.is_chief():
        np.savez(output_path.format(process=distribution.process_index()), **final)
    print("REPORT " + json.dumps(report), flush=True)
    distribution.shutdown_processes()


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    main(*sys.argv[1:3])
