"""`keras-cmr index`: embed one modality of a data split and save a retrieval index.

The folder is a `keras_cmr.retrieval` index (`load_index(DIR)` reads it) plus two files of
ours: `gallery.json`, which records the encoder that built it (a fingerprint of its weights)
so that `keras-cmr search` refuses queries embedded by another one, and `labels.npy`, the
gallery's labels, which tell search whether each hit is relevant.
"""

import os

from keras_cmr.cli.options import (DEFAULT_DATA, add_data_option, add_overwrite_option,
                                   check_output_folder)

GALLERY_FILE = "gallery.json"
LABELS_FILE = "labels.npy"
MODALITIES = ("image", "text")
# Rows embedded at a time; the progress bar counts these chunks.
EMBED_CHUNK_ROWS = 4096


def add_embedding_options(parser, encoder_help, modality_default, modality_help):
    """The encoder file, --split and --modality: what embeds which side of which split."""
    parser.add_argument("encoder", help=encoder_help)
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--modality", default=modality_default, choices=MODALITIES,
                        help=modality_help)


def add_parser(commands):
    parser = commands.add_parser(
        "index", help="embed a gallery with a saved encoder and save a retrieval index",
        description="Embed one modality of a data split with a saved encoder and save a "
                    "keras_cmr.retrieval index (exact; faiss with --faiss) to a folder.")
    add_embedding_options(parser, "a .keras file saved by keras-cmr (encoder or model)", "text",
                          "which side of the pairs forms the gallery (default text)")
    add_data_option(parser)
    parser.add_argument("--out", required=True, help="folder of the index")
    add_overwrite_option(parser, "the index (replaced whole; a folder of other files is never "
                                 "replaced)")
    parser.add_argument("--faiss", action="store_true",
                        help="a faiss IndexFlatIP (needs faiss-cpu) instead of brute force")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run, check=check)


def load_split(spec, split_name):
    """The named split of the data set `spec` names ("val" carved from train when absent)."""
    from keras_cmr.datasets import load_dataset

    dataset = load_dataset(spec or DEFAULT_DATA)
    if split_name == "val":
        dataset = dataset.with_validation()
    return dataset, dataset.splits[split_name]


def encoder_fingerprint(model):
    """SHA-256 of the encoder's weights (shapes and float32 values, in layer order).

    A trainer (`model.keras`) and the encoder saved from it (`encoder.keras`) share the
    fingerprint: only `model.encoder`'s weights count when the model has one.
    """
    import hashlib

    import numpy as np
    from keras import ops

    digest = hashlib.sha256()
    for weight in getattr(model, "encoder", model).weights:
        values = np.ascontiguousarray(ops.convert_to_numpy(weight), dtype="<f4")
        digest.update(repr(values.shape).encode())
        digest.update(values.tobytes())
    return digest.hexdigest()


def embed(model, modality, features, quiet):
    """`model`'s embeddings of `features`, chunk by chunk, with a progress bar on long work."""
    import keras
    import numpy as np

    encode = model.encode_image if modality == "image" else model.encode_text
    starts = range(0, len(features), EMBED_CHUNK_ROWS)
    progress = (keras.utils.Progbar(len(starts), unit_name="chunk")
                if not quiet and len(starts) > 1 else None)
    chunks = []
    for start in starts:
        try:
            chunks.append(encode(features[start:start + EMBED_CHUNK_ROWS]))
        except ValueError as error:
            raise ValueError(f"the encoder does not fit these {modality} features "
                             f"({features.shape[1]} wide): {error}") from error
        if progress is not None:
            progress.add(1)
    return np.concatenate(chunks)


def check(args):
    """The --out folder, before any work: any content counts (a folder of other files is
    refused by `index.save` even with --overwrite)."""
    check_output_folder(args.out, "--out", args.overwrite)


def run(args):
    import numpy as np

    from keras_cmr import saving
    from keras_cmr.retrieval import BruteForceIndex, FaissIndex

    try:
        index = FaissIndex() if args.faiss else BruteForceIndex()
    except ImportError as error:  # the command line reports bad setup as one line
        raise ValueError(f"--faiss: {error}") from None
    model = saving.load_model(args.encoder)
    dataset, split = load_split(args.data, args.split)
    features = getattr(split, args.modality)
    gallery = embed(model, args.modality, features, args.quiet)
    index.add(gallery)
    index.save(args.out)
    np.save(os.path.join(args.out, LABELS_FILE), split.labels)
    # Written last: its presence says the folder is complete.
    saving.write_json({
        "encoder": os.path.abspath(args.encoder),
        "encoder_fingerprint": encoder_fingerprint(model),
        "modality": args.modality, "feature_dim": int(features.shape[1]),
        "data": args.data or DEFAULT_DATA, "dataset": dataset.name, "split": args.split,
        "ntotal": int(index.ntotal),
    }, os.path.join(args.out, GALLERY_FILE))
    print(f"indexed {index.ntotal} {args.modality} items of {dataset.name} {args.split} "
          f"({index.kind}, {index.dim}-d) in {args.out}")
