"""From a folder of images and captions to a trained, saved MET model, on keras-hub encoders.

The raw-input path end to end: `load_raw_pairs` reads the folder (images + one `.jsonl` or
`.tsv` annotation file, format in `keras_cmr.datasets.raw`), `clip_towers` puts the method's
projection heads on the two encoders of a keras-hub CLIP preset (frozen by default),
`RawPairBatches` feeds `model.fit` (tokenising captions and converting images outside the
compiled step), stage 1 trains the class-wise source and stage 2 the MET target from it. With
a val split, each stage stops early on its validation average mAP; the test split is read
once, at the end. The target encoder, backbones included, is saved as one `.keras` file and
loaded back to check that it embeds the same.

Run it from the repository root:

    python examples/train_raw_pairs.py --data my_pairs/ --preset ./clip_vit_base_patch16
    python examples/train_raw_pairs.py --demo demo/ --epochs 2   # offline: tiny random CLIP

`--demo DIR` writes a tiny randomly initialised CLIP preset and a small generated data set
(coloured shapes with captions) into DIR and trains on them: it shows the pipeline, not what
CLIP is worth. Real presets: download one where a network is available (e.g. keras-hub's
"clip_vit_base_patch16": `keras_hub.models.CLIPBackbone.from_preset(name)`, then
`save_to_preset(folder)` for the backbone, `CLIPTokenizer` and `CLIPImageConverter`), copy the
folder here and pass it as `--preset`.
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220)}
SHAPES = ("cat", "dog")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="annotation file (.jsonl / .tsv) or its folder")
    parser.add_argument("--preset", help="a keras-hub CLIP preset folder")
    parser.add_argument("--demo", metavar="DIR",
                        help="write a tiny random CLIP preset and a generated data set into "
                             "DIR and use them (no download)")
    parser.add_argument("--epochs", type=int, default=20, help="most epochs per stage")
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--embedding-dim", type=int, default=256)
    parser.add_argument("--fine-tune", action="store_true",
                        help="fine-tune the backbones too (default: frozen, heads only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="raw_met_target.keras")
    parser.add_argument("--quiet", action="store_true", help="no Keras progress bars")
    args = parser.parse_args(argv)
    if args.demo and (args.data or args.preset):
        parser.error("--demo makes its own data and preset: give it alone")
    if not args.demo and not (args.data and args.preset):
        parser.error("give --data and --preset, or --demo DIR")
    if not args.output.endswith(".keras"):
        parser.error(f"--output must end in '.keras', got {args.output!r}")
    return args


def write_demo(folder, pairs_per_class=12):
    """A tiny CLIP preset and a data set of four classes (colour x animal) with captions."""
    import keras
    import numpy as np

    from keras_cmr.encoders.tiny import save_tiny_clip_preset

    preset = save_tiny_clip_preset(os.path.join(folder, "tiny_clip_preset"))
    images = os.path.join(folder, "pairs", "images")
    os.makedirs(images, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = []
    classes = [(colour, shape) for colour in COLOURS for shape in SHAPES]
    for label, (colour, shape) in enumerate(classes):
        for index in range(pairs_per_class):
            image = rng.integers(0, 60, (24, 24, 3)).astype("uint8")
            # The class is in the picture: its colour, and a bar whose place is the animal.
            rows = slice(4, 12) if shape == "cat" else slice(12, 20)
            image[rows, 4:20] = COLOURS[colour]
            name = f"{colour}_{shape}_{index:02d}.png"
            keras.utils.save_img(os.path.join(images, name), image)
            split = "train" if index < pairs_per_class - 4 else (
                "val" if index < pairs_per_class - 2 else "test")
            caption = rng.choice([f"a {colour} {shape}", f"the {shape} on a {colour} mat",
                                  f"a {colour} {shape} sits", f"the {colour} {shape} runs"])
            lines.append({"image": f"images/{name}", "caption": str(caption), "label": label,
                          "split": split})
    annotations = os.path.join(folder, "pairs", "captions.jsonl")
    with open(annotations, "w") as stream:
        stream.writelines(json.dumps(line) + "\n" for line in lines)
    return annotations, preset


def fit_stage(model, batches, val, args):
    import keras

    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate, beta_1=0.5))
    callbacks = []
    if val is not None:
        callbacks = [val, keras.callbacks.EarlyStopping(monitor="val_avg_map", mode="max",
                                                        patience=args.patience,
                                                        restore_best_weights=True)]
    history = model.fit(batches, epochs=args.epochs, callbacks=callbacks,
                        verbose=0 if args.quiet else 2)
    return len(history.history["loss"])


def main(argv=None):
    args = parse_args(argv)
    if args.demo:
        args.data, args.preset = write_demo(args.demo)
    import keras
    import numpy as np

    import keras_cmr
    from keras_cmr.datasets import load_raw_pairs
    from keras_cmr.encoders import RawPairBatches, clip_towers
    from keras_cmr.evaluation import RetrievalEvaluation, evaluate_retrieval
    from keras_cmr.models import CrossModalEncoder, SourceModel, TransferModel

    keras.utils.set_random_seed(args.seed)

    def encoder():
        return CrossModalEncoder(*clip_towers(args.preset, embedding_dim=args.embedding_dim,
                                              freeze_backbone=not args.fine_tune))

    source_encoder = encoder()
    image_tower, text_tower = source_encoder.image_tower, source_encoder.text_tower
    data = load_raw_pairs(args.data, image_size=image_tower.image_shape[:2])
    print(f"{data!r}; backend {keras.backend.backend()}", flush=True)
    train = data.train
    images = train.read_images()
    batch_size = min(args.batch_size, train.num_pairs)
    batches = RawPairBatches(images, train.captions, train.labels, image_tower, text_tower,
                             batch_size=batch_size, seed=args.seed)
    val = None
    if data.val is not None:
        val = RetrievalEvaluation(image_tower.preprocess(data.val.read_images()),
                                  text_tower.preprocess(data.val.captions), data.val.labels)

    source = SourceModel(source_encoder, data.num_classes, head="prototype")
    epochs = fit_stage(source, batches, val, args)
    print(f"stage 1, source (class-wise): {epochs} epoch(s)", flush=True)
    transfer = TransferModel(encoder(), source)
    epochs = fit_stage(transfer, batches, val, args)
    print(f"stage 2, MET transfer (soft contrastive): {epochs} epoch(s)", flush=True)

    test_images, test_captions = data.test.read_images(), data.test.captions
    target = transfer.target
    image_embeddings = target.encode_image(test_images)   # raw uint8 images in
    text_embeddings = target.encode_text(test_captions)   # raw captions in
    figures = evaluate_retrieval(image_embeddings, text_embeddings, data.test.labels)
    print(f"test mAP@all on {data.test.num_pairs} pairs: I2T {figures['i2t_map']:.4f}  "
          f"T2I {figures['t2i_map']:.4f}  avg {figures['avg_map']:.4f}")

    keras_cmr.saving.save_model(target, args.output)
    reloaded = keras_cmr.saving.load_model(args.output)
    difference = float(np.abs(reloaded.encode_text(test_captions) - text_embeddings).max())
    print(f"saved {args.output} (backbones included); reloaded, its text embeddings differ by "
          f"{difference:.1e}")


if __name__ == "__main__":
    main()
