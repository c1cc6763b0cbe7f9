"""The training benchmark's problem: shapes, data, optimizer settings and FLOPs of one step.

Shared by every method of benchmarks/training.py (keras-cmr and the reference loops), by the
matmul probe and by the report, so that all of them measure the same step.
"""

import os

import numpy as np

SEED = 0
# The library defaults of keras_cmr.losses.soft_contrastive (margin form).
SIGMA, DELTA, LABEL_MIX, EPSILON = 1.0, 1.5, 0.75, 1e-30
ADAM = {"learning_rate": 1e-3, "beta_1": 0.5, "beta_2": 0.999, "epsilon": 1e-7}


def add_problem_arguments(ap, pairs, epochs, timeout):
    """Adds the shape and run options shared by training.py and gpu_training.py."""
    ap.add_argument("--pairs", type=int, default=pairs)
    ap.add_argument("--batch-size", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=epochs,
                    help="timed epochs after 1 warm-up epoch")
    ap.add_argument("--classes", type=int, default=200)
    ap.add_argument("--dim", type=int, default=1024, help="image and text feature width")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--embedding", type=int, default=1024)
    ap.add_argument("--steps-per-execution", type=steps_option, default="auto",
                    help='train steps per compiled call of the keras-cmr rows: "auto" (the '
                         "library's per-backend default) or an integer")
    ap.add_argument("--torch-compile", action="store_true",
                    help="add keras-cmr[torch] with jit_compile=True (torch.compile)")
    ap.add_argument("--timeout", type=float, default=timeout, help="seconds per method")
    ap.add_argument("--json", default=None)


def check_problem_arguments(ap, args):
    """Exits through ap.error when the shapes leave no full batch or no timed epoch."""
    if args.pairs < args.batch_size or args.batch_size < 2:
        ap.error("need batch_size >= 2 and pairs >= batch_size")
    if args.epochs < 1:
        ap.error("--epochs must be >= 1")


def steps_option(value):
    """`--steps-per-execution`: "auto" or a positive integer."""
    return value if value == "auto" else int(value)


def config(args, device="cpu"):
    """The JSON-able configuration every worker process receives."""
    return {"pairs": args.pairs, "batch_size": args.batch_size, "epochs": args.epochs,
            "classes": args.classes, "dim": args.dim, "hidden": args.hidden,
            "embedding": args.embedding, "steps_per_execution": args.steps_per_execution,
            "jit_compile": "auto", "device": device, "fit_input": args.fit_input,
            "verbose": args.verbose}


def make_data(cfg):
    """(image, text, labels): random features and labels from SEED, or the parent's saved copy."""
    if cfg.get("data_dir"):
        return tuple(np.load(os.path.join(cfg["data_dir"], f"{name}.npy"))
                     for name in ("image", "text", "labels"))
    rng = np.random.default_rng(SEED)
    image = rng.standard_normal((cfg["pairs"], cfg["dim"]), dtype=np.float32)
    text = rng.standard_normal((cfg["pairs"], cfg["dim"]), dtype=np.float32)
    labels = rng.integers(0, cfg["classes"], cfg["pairs"]).astype(np.int32)
    return image, text, labels


def steps_per_epoch(cfg):
    return cfg["pairs"] // cfg["batch_size"]


def step_matmuls(cfg):
    """(m, k, n) of every matmul of one step, in order; FLOPs of each = 2mkn."""
    n, d, h, e = cfg["batch_size"], cfg["dim"], cfg["hidden"], cfg["embedding"]
    forward = [(n, d, h), (n, h, e)]
    backward = [(h, n, e), (n, e, h), (d, n, h)]  # dW2, dX2 (input grad of layer 2), dW1
    loss = [(n, e, n)] * 2 + [(n, n, e)] * 2  # s t^T, u v^T, d/du, d/dv
    return forward * 2 + forward * 2 + backward * 2 + loss  # source, target fwd, bwd, loss


def step_flops(cfg):
    return float(sum(2 * m * k * n for m, k, n in step_matmuls(cfg)))
