"""Classical baselines and input preprocessing on Wikipedia, chosen on validation only.

For every validation seed the training split is carved (`with_validation(0.1, seed)`), each
preprocessing pair (image steps x text steps) is fitted on the carved train, and for each
method the hyperparameters with the best validation avg mAP are kept; their test avg mAP is
reported (mean over seeds). Also: the label-regression baseline under label noise.

    python benchmarks/linear_baselines.py ../shared/data/wikipedia_sift_lda --seeds 3 \
        --out benchmarks/results/linear_baselines_wikipedia.json
"""

import argparse
import itertools
import json

import numpy as np

from keras_cmr.datasets import load_wikipedia
from keras_cmr.evaluation import evaluate_model
from keras_cmr.linear import fit_cca, fit_label_regression

IMAGE_STEPS = ([], ["hellinger"], ["standardize"], ["pca_whiten"])
TEXT_STEPS = ([], ["standardize"], ["hellinger"])
METHODS = {
    "cca": [(f"r={r},p={p}", lambda d, r=r, p=p: fit_cca(d, 9, regularization=r,
                                                          eigenvalue_power=p))
            for r, p in itertools.product((0.0, 0.01, 0.1, 0.5), (0.0, 4.0))],
    "label_regression": [(f"alpha={a}", lambda d, a=a: fit_label_regression(d, alpha=a))
                         for a in (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)],
}
NOISE_RATES = (0.0, 0.2, 0.4, 0.6)


def avg_map(encoder, split):
    return evaluate_model(encoder, split.image, split.text, split.labels)["avg_map"]


def select_on_validation(dataset, candidates):
    """(name, val mAP, test mAP) of the candidate with the best validation mAP."""
    scored = []
    for name, fit in candidates:
        encoder = fit(dataset)
        scored.append((name, avg_map(encoder, dataset.val), encoder))
    name, val, encoder = max(scored, key=lambda row: row[1])
    return name, val, avg_map(encoder, dataset.test)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    full = load_wikipedia(args.data)
    rows = []
    for seed in range(args.seeds):
        carved = full.with_validation(0.1, seed=seed)
        for image_steps, text_steps in itertools.product(IMAGE_STEPS, TEXT_STEPS):
            dataset = carved.preprocessed(image=image_steps, text=text_steps)
            for method, candidates in METHODS.items():
                chosen, val, test = select_on_validation(dataset, candidates)
                rows.append({"seed": seed, "method": method, "image": image_steps,
                             "text": text_steps, "chosen": chosen, "val": val, "test": test})
        for rate in NOISE_RATES:
            noisy = full.with_label_noise(rate, seed=seed).with_validation(0.1, seed=seed)
            chosen, val, test = select_on_validation(noisy, METHODS["label_regression"])
            rows.append({"seed": seed, "method": "label_regression", "noise": rate,
                         "image": [], "text": [], "chosen": chosen, "val": val, "test": test})
    summary = {}
    for row in rows:
        key = (row["method"], "+".join(row["image"]) or "raw", "+".join(row["text"]) or "raw",
               row.get("noise"))
        summary.setdefault(key, []).append(row)
    print(f"{'method':<17} {'image':<12} {'text':<12} {'noise':<5} {'val':>6} {'test':>6} "
          "chosen (seed 0)")
    for (method, image, text, noise), group in summary.items():
        val = np.mean([row["val"] for row in group])
        test = np.mean([row["test"] for row in group])
        print(f"{method:<17} {image:<12} {text:<12} {str(noise):<5} {val:6.4f} {test:6.4f} "
              f"{group[0]['chosen']}")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
