"""`keras-cmr extract-features`: frozen keras-hub backbone features of raw images and captions."""

from keras_cmr.cli.options import add_overwrite_option, check_output_file


def add_parser(commands):
    parser = commands.add_parser(
        "extract-features",
        help="encode a folder of images + captions with keras-hub backbones into a features "
             ".npz (then: --data npz:PATH)")
    parser.add_argument("--preset",
                        help="a keras-hub CLIP preset folder (both encoders, tokenizer and "
                             "image converter); or give --image-preset and --text-preset")
    parser.add_argument("--image-preset", help="a vision preset folder (ViT, CLIP, ...)")
    parser.add_argument("--text-preset", help="a text preset folder (BERT, CLIP, ...)")
    parser.add_argument("--data", required=True,
                        help="the annotation file (.jsonl or .tsv) of a raw data set, or its "
                             "folder (format: keras_cmr.datasets.raw)")
    parser.add_argument("--out", required=True, help="the features .npz to write")
    add_overwrite_option(parser, "the --out file")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int,
                        help="token ids per caption (default: the text encoder's, at most 77)")
    parser.add_argument("--skip-bad-rows", action="store_true",
                        help="drop bad annotation lines with a warning listing them, instead "
                             "of stopping with the list")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run, check=check)


def _towers(args):
    from keras_cmr.encoders import ImageTower, TextTower, clip_towers

    if args.preset and (args.image_preset or args.text_preset):
        raise ValueError("give --preset (one CLIP preset) or --image-preset and "
                         "--text-preset, not both")
    if args.preset:
        return clip_towers(args.preset, sequence_length=args.sequence_length)
    if not (args.image_preset and args.text_preset):
        raise ValueError("give --preset (one CLIP preset), or both --image-preset and "
                         "--text-preset")
    return (ImageTower.from_preset(args.image_preset),
            TextTower.from_preset(args.text_preset, sequence_length=args.sequence_length))


def check(args):
    """The --out file, before any work."""
    if not args.out.endswith(".npz"):
        raise ValueError(f"--out must name a .npz file, got {args.out!r}")
    check_output_file(args.out, "--out", args.overwrite)


def run(args):
    from keras_cmr.datasets import load_raw_pairs, save_npz
    from keras_cmr.encoders import extract_features

    image_tower, text_tower = _towers(args)
    # Decode straight to the backbone's input size: the converter then only rescales.
    dataset = load_raw_pairs(args.data, image_size=image_tower.image_shape[:2],
                             on_bad_rows="skip" if args.skip_bad_rows else "raise")
    features = extract_features(dataset, image_tower, text_tower, batch_size=args.batch_size,
                                verbose=not args.quiet)
    save_npz(features, args.out)
    counts = ", ".join(f"{name} {split.num_pairs}" for name, split in features.splits.items())
    print(f"saved {args.out}: {counts} pairs; image features {features.image_dim}-d, text "
          f"features {features.text_dim}-d, {features.num_classes} classes "
          f"(train on it with --data npz:{args.out})")
