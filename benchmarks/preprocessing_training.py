"""What input preprocessing buys a trained method on Wikipedia (validation and test avg mAP).

For each seed the validation split is carved first (`with_validation`, the protocol's
fraction), the preprocessing is fitted on the carved train, then `run_method` trains with
validation early stopping under the default `TrainingConfig`. One JSON line per run.

    KERAS_BACKEND=jax python benchmarks/preprocessing_training.py \
        ../shared/data/wikipedia_sift_lda contrastive --seeds 2
"""

import argparse
import json

from keras_cmr.datasets import load_wikipedia
from keras_cmr.experiment import TrainingConfig, run_method

SETTINGS = (([], []), (["hellinger"], []), (["standardize"], ["standardize"]),
            (["hellinger"], ["standardize"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("method")
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    full = load_wikipedia(args.data)
    config = TrainingConfig(verbose=0)
    for seed in range(args.seeds):
        carved = full.with_validation(config.validation_fraction, seed=seed)
        for image, text in SETTINGS:
            data = carved.preprocessed(image=image, text=text)
            _, result = run_method(args.method, data, config, seed=seed)
            print(json.dumps({"method": args.method, "seed": seed, "image": image,
                              "text": text, "val": result.best_val_avg_map,
                              "test": result.test["avg_map"], "epochs": result.epochs,
                              "seconds": round(result.seconds)}), flush=True)


if __name__ == "__main__":
    main()
