"""What the portable dropout costs one training step on the current backend.

Run from the repository root, once per backend:

    KERAS_BACKEND=torch python benchmarks/dropout_cost.py [--steps 60]

Builds the control (`build_model("control", 10, TrainingConfig(dropout=d))`: the protocol's
towers, Dense(1024) -> GELU -> dropout -> Dense(256)) for dropout 0.1 and 0.0 in turn, on one
batch of 100 random pairs of Wikipedia's widths (image 128, text 10), builds it and its
optimizer (`build_for`), runs 5 warm-up steps of `train_on_batch`, then prints the mean
milliseconds of the next --steps steps. The difference between the two rows is the dropout's
cost: its mask bits (`keras_cmr.utils.random.counter_bits`) and the masking.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_cmr.config import TrainingConfig  # noqa: E402
from keras_cmr.experiment import build_model  # noqa: E402


def step_milliseconds(dropout, steps):
    rng = np.random.default_rng(0)
    x = {"image": rng.normal(size=(100, 128)).astype("float32"),
         "text": rng.normal(size=(100, 10)).astype("float32")}
    y = np.arange(100) % 10
    model = build_model("control", 10, TrainingConfig(dropout=dropout, verbose=0))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.build_for(x)
    for _ in range(5):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / steps * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    for dropout in (0.1, 0.0):
        print(f"{keras.backend.backend()} dropout {dropout}: "
              f"{step_milliseconds(dropout, args.steps):.2f} ms/step", flush=True)


if __name__ == "__main__":
    main()
