"""Serve a trained encoder: embed a text gallery once, then answer image queries from it.

Loads a `.keras` encoder saved by `train_met.py` with `keras_cmr.saving.load_model` (safe mode:
no code in the file runs), embeds every text of a data split in batches with
`encoder.encode_text` (the gallery, computed once, as a server would), embeds image queries with
`encoder.encode_image`, and ranks the gallery by cosine similarity (a dot product of
L2-normalised embeddings), ties broken by gallery index as in `keras_cmr.evaluation`. For the
first few images of the split it prints the top-k texts' indices, similarities and whether
their class matches the query's, then the split's image->text mAP@all over all queries as a
check (the same figure `train_met.py` printed for the target before saving it).

Run it from the repository root, after training:

    python examples/train_met.py --output met_target.keras
    python examples/serve_embeddings.py --model met_target.keras
    python examples/serve_embeddings.py --model met_target.keras --queries 3 --top-k 10

`--data` must name the data the encoder was trained on (same feature widths); the default is
"digits", as in `train_met.py`.
"""

import argparse
import os
import re
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="met_target.keras",
                        help="the .keras encoder saved by train_met.py (default %(default)s)")
    parser.add_argument("--data", default="digits",
                        help="'digits' (default, no download), 'wikipedia:PATH' or 'npz:PATH'; "
                             "the data the encoder was trained on")
    parser.add_argument("--split", default="test", choices=("train", "test"),
                        help="split whose texts form the gallery and whose images are the "
                             "queries (default %(default)s)")
    parser.add_argument("--queries", type=int, default=5,
                        help="how many images to answer, from the first (default %(default)s)")
    parser.add_argument("--top-k", type=int, default=5,
                        help="texts returned per query (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=128,
                        help="rows per forward pass when embedding (default %(default)s)")
    args = parser.parse_args(argv)
    for name in ("queries", "top_k", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def top_k(similarities, k):
    """Indices of the k highest similarities per row, ties broken by gallery index."""
    order = np.argsort(-similarities, axis=1, kind="stable")
    return order[:, :k]


def same_class(labels, other):
    """Class ids match, or (multi-hot labels) at least one label is shared."""
    return bool(np.any(labels & other)) if np.ndim(labels) else bool(labels == other)


def class_text(dataset, labels):
    """A class id (or multi-hot row) with its name when the data set has names."""
    ids = np.flatnonzero(labels).tolist() if np.ndim(labels) else [int(labels)]
    if dataset.class_names is None:
        return "/".join(str(i) for i in ids)
    return "/".join(f"{i} {dataset.class_names[i]!r}" for i in ids)


def short_error(error):
    """The telling line of a (multi-line, colour-coded) Keras error message."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line]
    telling = [line for line in lines if "expected" in line] or lines or [""]
    return f"{type(error).__name__}: {telling[0]}"


def fail(message):
    print(f"serve_embeddings.py: error: {message}", file=sys.stderr)
    return 2


def main(argv=None):
    args = parse_args(argv)
    # Checked before the (slow) Keras import, so a wrong path fails at once.
    if not os.path.isfile(args.model):
        return fail(f"no model file at {args.model!r}. Train one first:\n"
                    f"  python examples/train_met.py --output {args.model}")
    import keras_cmr
    from keras_cmr.datasets import load_dataset

    try:
        encoder = keras_cmr.saving.load_model(args.model)
    except (ValueError, TypeError) as error:
        return fail(str(error))
    dataset = load_dataset(args.data)
    split = dataset.splits[args.split]

    try:
        # The gallery: every text of the split, embedded once, `batch_size` rows at a time.
        gallery = encoder.encode_text(split.text, batch_size=args.batch_size)
        # Queries arrive as a batch of image feature rows; any number of rows works.
        queries = encoder.encode_image(split.image[:args.queries], batch_size=args.batch_size)
    except Exception as error:  # e.g. a feature width that is not the one trained on
        return fail(f"{args.model!r} could not embed {args.data!r} {args.split} data "
                    f"(image dim {split.image_dim}, text dim {split.text_dim}); was it trained "
                    f"on this data? {short_error(error)}")
    print(f"{args.model}: {type(encoder).__name__}, embedding dim {gallery.shape[1]}")
    print(f"gallery: {split.num_pairs} {args.split} texts -> embeddings {gallery.shape} "
          f"(encode_text, batches of {args.batch_size})")
    print(f"queries: first {len(queries)} {args.split} images -> embeddings {queries.shape} "
          "(encode_image)")

    # Cosine similarity. keras_cmr's towers L2-normalise already; normalising here as well
    # keeps the ranking right for towers built with `normalize=False`.
    gallery = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
    queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    similarities = queries @ gallery.T
    k = min(args.top_k, split.num_pairs)
    hits_total = 0
    for row, neighbours in enumerate(top_k(similarities, k)):
        query_label = split.labels[row]
        print(f"\nimage {row} (class {class_text(dataset, query_label)}; its paired text is "
              f"{row}): top {k} texts")
        classes = [class_text(dataset, split.labels[index]) for index in neighbours]
        width = max(len(name) for name in classes)
        for rank, (index, name) in enumerate(zip(neighbours, classes), start=1):
            match = same_class(split.labels[index], query_label)
            hits_total += match
            print(f"  {rank}. text {index:>5}  similarity {similarities[row, index]:+.4f}  "
                  f"class {name:<{width}}  {'match' if match else 'no match'}")
    print(f"\nprecision@{k} over these {len(queries)} queries: "
          f"{hits_total / (k * len(queries)):.4f}")

    # The whole split, for reference: every image as a query against the text gallery.
    all_images = encoder.encode_image(split.image, batch_size=args.batch_size)
    figures = keras_cmr.evaluation.evaluate_retrieval(all_images, gallery, split.labels)
    print(f"image->text mAP@all over all {split.num_pairs} {args.split} images: "
          f"{figures['i2t_map']:.4f} (text->image {figures['t2i_map']:.4f}, "
          f"avg {figures['avg_map']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
