"""MET's stage 2 as a plain functional Keras model: `SoftContrastiveLossLayer` and `model.fit`.

Stage 1 trains a class-wise source (`SourceModel`) and embeds the training pairs once. Stage 2
is an ordinary `keras.Model` built from `keras.Input`s: two `ProjectionTower`s and a
`SoftContrastiveLossLayer`, which adds the soft contrastive loss with `add_loss`. It compiles
with an optimizer only and fits on a dict of inputs without `y` (the labels and the source
embeddings are inputs). The target towers are then evaluated on the test split and the whole
functional model is saved and reloaded as one `.keras` file.

Run it from the repository root:

    python examples/functional_loss_layer.py                 # digits (no download)
    KERAS_BACKEND=jax python examples/functional_loss_layer.py --epochs 2 --quiet

The data, "digits", is scikit-learn's 8x8 digits cut into two half-image views: a stand-in
that exercises the code, not image-text data.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="epochs per stage")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--output", default="functional_met.keras",
                        help="where to save the functional model (default %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no Keras progress bars")
    args = parser.parse_args(argv)
    if not args.output.endswith(".keras"):
        parser.error(f"--output must end in '.keras', got {args.output!r}")
    return args


def build_functional_model(image_dim, text_dim, source_dim, args, **loss_options):
    """Inputs (image, text, source_image, source_text, labels) -> the two target embeddings."""
    import keras

    from keras_cmr.layers import ProjectionTower, SoftContrastiveLossLayer

    inputs = {
        "image": keras.Input((image_dim,), name="image"),
        "text": keras.Input((text_dim,), name="text"),
        "source_image": keras.Input((source_dim,), name="source_image"),
        "source_text": keras.Input((source_dim,), name="source_text"),
        "labels": keras.Input((), dtype="int32", name="labels"),
    }
    towers = [ProjectionTower(args.embedding_dim, hidden_dims=(args.hidden_dim,),
                              name=f"{modality}_tower") for modality in ("image", "text")]
    image_embeddings = towers[0](inputs["image"])
    text_embeddings = towers[1](inputs["text"])
    outputs = SoftContrastiveLossLayer(name="soft_contrastive", **loss_options)(
        image_embeddings, text_embeddings, inputs["source_image"], inputs["source_text"],
        labels=inputs["labels"])
    return keras.Model(inputs, outputs, name="functional_met")


def main(argv=None):
    """Trains both stages; returns the test avg mAP of both and the reloaded model's check."""
    args = parse_args(argv)
    import keras
    import numpy as np

    from keras_cmr.datasets import load_digits_two_view
    from keras_cmr.evaluation import evaluate_retrieval
    from keras_cmr.models import CrossModalEncoder, SourceModel

    keras.utils.set_random_seed(0)
    data = load_digits_two_view()
    train, test = data.train, data.test
    verbose = 0 if args.quiet else 2

    # Stage 1: a class-wise source, then its embeddings of every training pair.
    source = SourceModel(CrossModalEncoder.projection(args.embedding_dim,
                                                      hidden_dims=(args.hidden_dim,)),
                         data.num_classes)
    source.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    source.fit({"image": train.image, "text": train.text}, train.labels,
               batch_size=args.batch_size, epochs=args.epochs, verbose=verbose)
    source_image, source_text = source.encode_image(train.image), source.encode_text(train.text)

    # Stage 2: a functional model whose loss is a layer; fit takes no y.
    model = build_functional_model(train.image.shape[1], train.text.shape[1],
                                   source_image.shape[1], args, sigma=1.0, delta=1.5,
                                   label_mix=0.75)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate, beta_1=0.5))
    history = model.fit({"image": train.image, "text": train.text,
                         "source_image": source_image, "source_text": source_text,
                         "labels": train.labels.astype("int32")},
                        batch_size=args.batch_size, epochs=args.epochs, verbose=verbose)

    # Retrieval needs the towers only: the same layers, without the loss inputs.
    image_tower, text_tower = model.get_layer("image_tower"), model.get_layer("text_tower")
    figures = {
        "source": evaluate_retrieval(source.encode_image(test.image),
                                     source.encode_text(test.text), test.labels)["avg_map"],
        "target": evaluate_retrieval(image_tower(test.image, training=False),
                                     text_tower(test.text, training=False),
                                     test.labels)["avg_map"],
    }
    print(f"training loss by epoch: {[round(x, 4) for x in history.history['loss']]}")
    print(f"test avg mAP@all: source {figures['source']:.4f}, functional MET target "
          f"{figures['target']:.4f}")

    model.save(args.output)
    reloaded = keras.saving.load_model(args.output)
    same = np.allclose(keras.ops.convert_to_numpy(
        reloaded.get_layer("image_tower")(test.image, training=False)),
        keras.ops.convert_to_numpy(image_tower(test.image, training=False)), atol=1e-6)
    print(f"saved to {args.output}; reloaded, it embeds the test images "
          f"{'identically' if same else 'DIFFERENTLY'}")
    return {**figures, "loss": history.history["loss"], "reloaded_identical": bool(same)}


if __name__ == "__main__":
    main()
    sys.exit(0)
