"""Shape checks of the losses' tensor inputs (static shapes only; unknown sizes pass)."""

from keras import ops

from keras_cmr.losses.distances import to_float32


def check_rank(name, x, rank):
    if len(x.shape) != rank:
        raise ValueError(f"{name} must have rank {rank}; received shape {tuple(x.shape)}")


def check_same_size(named_tensors, axis=0, what="number of pairs"):
    """Raise when the static sizes along `axis` differ (unknown sizes are not checked)."""
    sizes = {name: x.shape[axis] for name, x in named_tensors.items() if x is not None}
    known = {name: size for name, size in sizes.items() if size is not None}
    if len(set(known.values())) > 1:
        detail = ", ".join(f"{name}: {size}" for name, size in known.items())
        raise ValueError(f"the {what} must be equal; received {detail}")


def check_embeddings(**embeddings):
    """Rank-2 embeddings with one static batch size; returns them cast to float32."""
    cast = {}
    for name, x in embeddings.items():
        x = to_float32(x)
        check_rank(name, x, 2)
        cast[name] = x
    check_same_size(cast)
    return cast


def check_same_width(embeddings, a, b):
    """Raise when embeddings[a] and embeddings[b] have different static embedding sizes."""
    width_a, width_b = embeddings[a].shape[-1], embeddings[b].shape[-1]
    if None not in (width_a, width_b) and width_a != width_b:
        raise ValueError(f"{a} and {b} must have the same embedding size; received "
                         f"{width_a} and {width_b}")


def check_labels(labels, embeddings):
    """Labels whose pair count matches the embeddings' (static shapes only)."""
    labels = ops.convert_to_tensor(labels)
    if len(labels.shape) not in (1, 2):
        raise ValueError(
            "labels must be 1-D class indices or 2-D multi-hot; received shape "
            f"{tuple(labels.shape)}"
        )
    check_same_size({"labels": labels, **embeddings})
    return labels
