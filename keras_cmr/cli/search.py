"""`keras-cmr search`: answer the queries of a data split from an index `keras-cmr index` built.

Writes one JSON line per query: {"query": its row in the split, "ids": the hits' rows in the
indexed split, best first, "scores": their cosine similarities, "relevant": whether each hit
shares the query's label} ("relevant" only when the index holds the gallery's labels).
"""

import json
import os

from keras_cmr.cli.index import (GALLERY_FILE, LABELS_FILE, MODALITIES, add_embedding_options,
                                 embed, encoder_fingerprint, load_split)
from keras_cmr.cli.options import DATA_HELP, add_overwrite_option, check_output_file


def add_parser(commands):
    parser = commands.add_parser(
        "search", help="answer queries from an index built by `keras-cmr index`",
        description="Embed the queries of a data split with the encoder that built the index "
                    "and write each query's top-k hits to a JSON-lines file.")
    parser.add_argument("index", help="the folder written by `keras-cmr index`")
    add_embedding_options(parser, "the .keras file the index was built with", None,
                          "the queries' side of the pairs (default: the other side than the "
                          "index's)")
    parser.add_argument("--queries", help=f"data set of the queries; {DATA_HELP}")
    parser.add_argument("--top-k", type=int, default=10, help="hits per query (default 10)")
    parser.add_argument("--out", required=True, help="JSON-lines file of the results")
    add_overwrite_option(parser, "the --out file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run, check=check)


def read_gallery_record(directory):
    """The index's `gallery.json`: which encoder built it, from which modality and data."""
    from keras_cmr.retrieval import load_index

    index = load_index(directory)  # a clear FileNotFoundError when there is no index
    path = os.path.join(directory, GALLERY_FILE)
    try:
        with open(path) as stream:
            record = json.load(stream)
    except FileNotFoundError:
        raise ValueError(f"{directory!r} holds an index but no {GALLERY_FILE}: it was not built "
                         "by `keras-cmr index`, or building it was interrupted; build it again "
                         "with `keras-cmr index`.") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path!r} is not valid JSON ({error}).") from None
    return index, record


def relevance(query_labels, gallery_labels, hits):
    """(queries, k) bool: the hit shares a label with its query (multi-hot: any label)."""
    import numpy as np

    found = gallery_labels[hits]
    if query_labels.ndim == 1:
        return found == query_labels[:, None]
    return np.einsum("ql,qkl->qk", query_labels, found) > 0


def check(args):
    """--top-k and the --out file, before any work."""
    if args.top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {args.top_k}")
    check_output_file(args.out, "--out", args.overwrite)


def run(args):
    import numpy as np

    from keras_cmr import saving

    index, record = read_gallery_record(args.index)
    model = saving.load_model(args.encoder)
    fingerprint = encoder_fingerprint(model)
    if fingerprint != record.get("encoder_fingerprint"):
        raise ValueError(
            f"{args.index!r} was built with another encoder ({record.get('encoder')!r}, weights "
            f"fingerprint {str(record.get('encoder_fingerprint'))[:12]}) than {args.encoder!r} "
            f"(fingerprint {fingerprint[:12]}): embeddings of different encoders do not share "
            "a space. Search with the encoder that built the index, or rebuild the index.")
    modality = args.modality or next(m for m in MODALITIES if m != record["modality"])
    dataset, split = load_split(args.queries, args.split)
    queries = embed(model, modality, getattr(split, modality), args.quiet)
    scores, hits = index.search(queries, args.top_k, verbose=False if args.quiet else "auto")
    labels_path = os.path.join(args.index, LABELS_FILE)
    relevant = None
    if os.path.isfile(labels_path):
        gallery_labels = np.load(labels_path, allow_pickle=False)
        if gallery_labels.ndim != split.labels.ndim:
            raise ValueError(f"the index's labels are {gallery_labels.ndim}-D, the queries' "
                             f"{split.labels.ndim}-D: they come from different label sets.")
        relevant = relevance(split.labels, gallery_labels, hits)
    with saving.atomic_path(args.out) as temporary, open(temporary, "w") as stream:
        for row in range(len(hits)):
            line = {"query": row, "ids": hits[row].tolist(),
                    "scores": [float(score) for score in scores[row]]}
            if relevant is not None:
                line["relevant"] = relevant[row].tolist()
            stream.write(json.dumps(line) + "\n")
    summary = "" if relevant is None else \
        f"; precision@{hits.shape[1]} {relevant.mean():.4f}"
    print(f"searched {len(hits)} {modality} queries of {dataset.name} {args.split} against "
          f"{index.ntotal} {record['modality']} items: top {hits.shape[1]} each in "
          f"{args.out}{summary}")
