"""What the relaxed labels tell the target: statistics of w_ij over training batches.

For one seed, the source's relaxed labels, before the hard-label mix (MET's sigma and
calibration, batches
of the protocol's size drawn from the training pairs) are computed from two sources: the
single `source_method` model trained on every training pair (it embeds pairs it fitted), and
the out-of-fold sources (each pair embedded by a source that never trained on it). For
contrast, the single source is also measured on validation pairs, which it never saw. Per
source: the mean w of same-class and of other-class pairs (the pairs i != j), the spread of
the other-class w, the ROC AUC of w for telling same-class from other-class pairs, and how
often the text with the largest w_ij (j != i) shares image i's class.

    KERAS_BACKEND=jax python experiments/relaxed_labels.py --config experiments/wikipedia.json \\
        --json experiments/results/relaxed_labels_wikipedia.json
"""

import argparse
import dataclasses
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def roc_auc(scores, positive):
    """P(score of a positive > score of a negative), ties counting one half."""
    scores, positive = np.asarray(scores, float), np.asarray(positive, bool)
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks over ties (1-based).
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(scores)]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2
    count_pos, count_neg = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - count_pos * (count_pos + 1) / 2)
                 / (count_pos * count_neg))


def label_statistics(batches):
    """Statistics over batches of (w (n, n), labels (n,)); pairs i != j only."""
    same_w, other_w, agree = [], [], []
    for w, labels in batches:
        off_diagonal = ~np.eye(len(labels), dtype=bool)
        same = (labels[:, None] == labels[None, :]) & off_diagonal
        other = (labels[:, None] != labels[None, :])
        same_w.append(w[same])
        other_w.append(w[other])
        best = np.argmax(np.where(off_diagonal, w, -np.inf), axis=1)
        agree.append(labels[best] == labels)
    same_w, other_w = np.concatenate(same_w), np.concatenate(other_w)
    return {
        "mean_w_same_class": float(same_w.mean()),
        "mean_w_other_class": float(other_w.mean()),
        "std_w_other_class": float(other_w.std()),
        "auc_same_vs_other": roc_auc(np.r_[same_w, other_w],
                                     np.r_[np.ones(len(same_w)), np.zeros(len(other_w))]),
        "top1_partner_same_class": float(np.concatenate(agree).mean()),
    }


def batches_of(image, text, labels, batch_size, seed, options):
    """Relaxed labels (loss options `sigma`, `calibration`) of shuffled full batches."""
    from keras import ops

    from keras_cmr.losses import relaxed_labels

    order = np.random.default_rng(seed).permutation(len(labels))
    for start in range(0, len(order) - batch_size + 1, batch_size):
        rows = order[start:start + batch_size]
        w = relaxed_labels(image[rows], text[rows], sigma=options.get("sigma", 1.0),
                           calibration=options.get("calibration", "none"))
        yield ops.convert_to_numpy(w), labels[rows]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="experiment file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5, help="out-of-fold sources (default 5)")
    parser.add_argument("--json", required=True, help="where to write the statistics")
    args = parser.parse_args(argv)
    from keras_cmr import saving
    from keras_cmr.utils.files import read_json_object
    from keras_cmr.datasets import load_dataset
    from keras_cmr.experiment import TrainingConfig, out_of_fold_source, run_method

    experiment = read_json_object(args.config, "--config")
    config = TrainingConfig.from_experiment(experiment, args.config, verbose=0, source_folds=1)
    dataset = load_dataset(experiment["data"]).with_validation(config.validation_fraction,
                                                               seed=args.seed)
    train, val = dataset.train, dataset.val
    single, _ = run_method(config.source_method, dataset, config, seed=args.seed)
    folded = out_of_fold_source(dataset, dataclasses.replace(config, source_folds=args.folds),
                                seed=args.seed)
    embedded = {
        "single source, training pairs": (single.encode_image(train.image),
                                          single.encode_text(train.text), train.labels),
        f"out-of-fold sources ({args.folds}), training pairs": (folded.image, folded.text,
                                                               train.labels),
        "single source, validation pairs (unseen)": (single.encode_image(val.image),
                                                     single.encode_text(val.text), val.labels),
    }
    options = config.soft_contrastive
    rows = {}
    for name, (image, text, labels) in embedded.items():
        batch_size = min(config.batch_size, len(labels))
        rows[name] = label_statistics(batches_of(image, text, labels, batch_size, args.seed,
                                                 options))
    saving.write_json({"config": args.config, "seed": args.seed, "loss_options": options,
                       "sources": rows}, args.json)
    print(f"relaxed labels with {options}, seed {args.seed}, pairs i != j:\n")
    print("| source embeddings | mean w, same class | mean w, other class | std w, other class "
          "| AUC same vs other | top-1 partner same class |\n|---|---|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['mean_w_same_class']:.3f} | {row['mean_w_other_class']:.3f} | "
              f"{row['std_w_other_class']:.3f} | {row['auc_same_vs_other']:.3f} | "
              f"{row['top1_partner_same_class']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
