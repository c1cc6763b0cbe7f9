"""Train MET in two stages with `model.fit`, print the test figures, save the target encoder.

Stage 1 trains a class-wise *source* (`SourceModel`: normalised-softmax cross-entropy, one
classifier shared by both towers). Stage 2 trains a fresh *target* encoder pair-wise from the
frozen source (`TransferModel` with the soft contrastive loss: relaxed labels and margins).
Each stage stops early on the validation average mAP (a `RetrievalEvaluation` callback placed
before `EarlyStopping`, best weights restored); the validation split is carved, stratified and
seeded, from the training pairs. The test split is read once per model, at the end. The
target encoder, all that retrieval needs, is saved for `serve_embeddings.py`.

Run it from the repository root:

    python examples/train_met.py                              # digits (no download), a few minutes
    python examples/train_met.py --epochs 2 --quiet           # a smoke run, well under a minute
    python examples/train_met.py --data wikipedia:../shared/data/wikipedia_sift_lda
    KERAS_BACKEND=jax python examples/train_met.py            # any Keras backend

The default data, "digits", is scikit-learn's 8x8 digits cut into two half-image views: a
stand-in that exercises the pipeline, not image-text data.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits",
                        help="'digits' (default, no download), 'wikipedia:PATH' or 'npz:PATH'")
    parser.add_argument("--epochs", type=int, default=200,
                        help="most epochs per stage; early stopping on the validation avg mAP "
                             "may end sooner (default %(default)s)")
    parser.add_argument("--patience", type=int, default=10,
                        help="epochs without a better validation avg mAP before stopping "
                             "(default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--embedding-dim", type=int, default=256,
                        help="width of the shared embedding space (default %(default)s)")
    parser.add_argument("--sigma", default="1.0",
                        help="relaxed-label bandwidth: a number or 'median' (default %(default)s)")
    parser.add_argument("--delta", type=float, default=1.5,
                        help="relaxed-margin scale (default %(default)s)")
    parser.add_argument("--label-mix", type=float, default=0.75,
                        help="weight of the hard labels in the relaxed labels (default "
                             "%(default)s)")
    parser.add_argument("--hidden-dim", type=int, default=1024,
                        help="hidden width of each tower (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the validation split and of the weights")
    parser.add_argument("--output", default="met_target.keras",
                        help="where to save the target encoder (default %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no Keras progress bars")
    args = parser.parse_args(argv)
    if args.sigma != "median":
        try:
            args.sigma = float(args.sigma)
        except ValueError:
            parser.error(f"--sigma must be a number or 'median', got {args.sigma!r}")
    if not args.output.endswith(".keras"):
        parser.error(f"--output must end in '.keras', got {args.output!r}")
    return args


def fit_stage(model, data, args):
    """Compiles and fits one stage with validation early stopping; returns its History."""
    import keras

    from keras_cmr.evaluation import RetrievalEvaluation

    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate, beta_1=0.5))
    callbacks = [
        # First: it writes val_i2t_map / val_t2i_map / val_avg_map into the epoch's logs...
        RetrievalEvaluation(data.val.image, data.val.text, data.val.labels),
        # ...which EarlyStopping then reads (callbacks run in list order).
        keras.callbacks.EarlyStopping(monitor="val_avg_map", mode="max",
                                      patience=args.patience, restore_best_weights=True),
    ]
    return model.fit({"image": data.train.image, "text": data.train.text}, data.train.labels,
                     batch_size=args.batch_size, epochs=args.epochs, shuffle=True,
                     callbacks=callbacks, verbose=0 if args.quiet else 2)


def describe_stage(name, history):
    curve = history.history["val_avg_map"]
    best = max(range(len(curve)), key=curve.__getitem__)
    return (f"{name}: {len(curve)} epoch(s), best validation avg mAP {curve[best]:.4f} "
            f"at epoch {best + 1} (weights restored)")


def main(argv=None):
    args = parse_args(argv)
    import keras_cmr
    import keras

    from keras_cmr.datasets import load_dataset
    from keras_cmr.evaluation import evaluate_retrieval
    from keras_cmr.models import CrossModalEncoder, SourceModel, TransferModel

    data = load_dataset(args.data).with_validation(0.1, seed=args.seed)
    keras.utils.set_random_seed(args.seed)
    print(f"{data.name}: {data.train.num_pairs} train / {data.val.num_pairs} val / "
          f"{data.test.num_pairs} test pairs, image dim {data.image_dim}, text dim "
          f"{data.text_dim}, {data.num_classes} classes; backend {keras.backend.backend()}",
          flush=True)
    start = time.perf_counter()

    def towers():
        return CrossModalEncoder.projection(args.embedding_dim, hidden_dims=(args.hidden_dim,))

    # Stage 1: the class-wise source (prototype contrastive loss).
    source = SourceModel(towers(), data.num_classes, head="prototype")
    source_history = fit_stage(source, data, args)
    print(describe_stage("stage 1, source (class-wise)", source_history), flush=True)

    # Stage 2: a fresh target learns pair-wise from the frozen source.
    loss = keras_cmr.losses.SoftContrastiveLoss(sigma=args.sigma, delta=args.delta,
                                                label_mix=args.label_mix)
    transfer = TransferModel(towers(), source, loss)
    transfer_history = fit_stage(transfer, data, args)
    print(describe_stage("stage 2, MET transfer (soft contrastive)", transfer_history),
          flush=True)

    # The test split, read once per model: retrieval uses the encoders only.
    test = data.test
    rows = {"source (stage 1)": source.encoder, "MET target": transfer.target}
    print(f"\ntest mAP@all on {test.num_pairs} pairs ({time.perf_counter() - start:.0f} s "
          "of training)")
    print(f"{'model':<18}{'I2T':>8}{'T2I':>8}{'avg':>8}")
    for name, encoder in rows.items():
        figures = evaluate_retrieval(encoder.encode_image(test.image),
                                     encoder.encode_text(test.text), test.labels)
        print(f"{name:<18}{figures['i2t_map']:>8.4f}{figures['t2i_map']:>8.4f}"
              f"{figures['avg_map']:>8.4f}")

    keras_cmr.saving.save_model(transfer.target, args.output)
    print(f"\nsaved the target encoder to {args.output}; serve it with:\n"
          f"  python examples/serve_embeddings.py --model {args.output} --data {args.data}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
