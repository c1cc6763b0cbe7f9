"""MET stage 2 through the library's own `fit` path, every backend against JAX (issue 16, item 1).

What runs is what `keras_cmr.experiment` runs: `TransferModel` (no source model) compiled with
the protocol's optimiser (`TrainingConfig().optimizer()`: Adam lr 1e-3, beta_1 0.5) and the
library's compile defaults, then `fit(x={"image", "text", "source_image", "source_text"},
y=labels, batch_size=100, shuffle=True, callbacks=[StopOnNonFiniteLoss()], verbose=0)` on
random float32 pairs of the Wikipedia widths (image 128, text 10, 10 classes) with precomputed
L2-normalised source embeddings. The per-epoch validation and test evaluation of the protocol
are left out: they are epoch-level and measured by `compare_time.py`.

Towers: "default" is the protocol's (Dense(1024) -> GELU -> Dense(256), dropout 0.1, L2);
"tiny" is Dense(16) -> GELU -> Dense(16), where the per-step overhead dominates.
`--input device` feeds `keras_cmr.models.DeviceBatches` (issue 16, item 2: the data set kept
on the device, each batch gathered there) instead of numpy arrays.

Every (round, towers, backend) runs in a fresh process; rounds interleave the backends so a
change in load hits all of them. Epoch 1 is a warm-up (tracing, compilation); pairs/s is the
pairs of an epoch over its wall time, best of the timed epochs. The ratio to JAX is taken
within a round, and the table gives the best round of each row with its ratio in that round
and its first epoch's seconds ("warm-up s": the timed epochs' work plus tracing and compiling).

    python benchmarks/training_fit.py                       # both tower sizes, 3 backends
    python benchmarks/training_fit.py --threads 1 --rounds 2 --json fit.json
    python benchmarks/training_fit.py --compile '{"jit_compile": true}' --backends tensorflow
    python benchmarks/training_fit.py --row tf-spe1 tensorflow '{"steps_per_execution": 1}'

`--row LABEL BACKEND OPTIONS_JSON` adds a row that runs in every round after the
library-default rows: OPTIONS_JSON holds compile arguments (e.g. the former default
'{"steps_per_execution": 1}', or torch.compile '{"jit_compile": true}') and optionally
"input": "device" or "arrays" (default: `--input`).
"""

import argparse
import json
import os
import subprocess
import sys
import time

TOWERS = {"default": (1024, 256), "tiny": (16, 16)}
BACKENDS = ("jax", "tensorflow", "torch")


def thread_env(threads):
    """Environment variables that hold every framework to `threads` CPU threads."""
    if not threads:
        return {}
    n = str(threads)
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n,
            "TF_NUM_INTRAOP_THREADS": n, "TF_NUM_INTEROP_THREADS": n,
            "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
                         f"intra_op_parallelism_threads={n}"}


def worker(options):
    """One backend, one tower size: fits and returns the per-epoch seconds (runs in a child)."""
    import keras
    import numpy as np

    from keras_cmr.callbacks import StopOnNonFiniteLoss
    from keras_cmr.config import TrainingConfig
    from keras_cmr.models import CrossModalEncoder, DeviceBatches, TransferModel

    hidden, embedding = TOWERS[options["towers"]]
    pairs, batch_size = options["pairs"], options["batch_size"]
    rng = np.random.default_rng(0)
    source = rng.normal(size=(2, pairs, embedding)).astype("float32")
    source /= np.linalg.norm(source, axis=-1, keepdims=True)
    inputs = {"image": rng.normal(size=(pairs, 128)).astype("float32"),
              "text": rng.normal(size=(pairs, 10)).astype("float32"),
              "source_image": source[0], "source_text": source[1]}
    labels = rng.integers(0, 10, size=pairs)
    data = {"x": inputs, "y": labels, "batch_size": batch_size, "shuffle": True}
    if options["input"] == "device":
        data = {"x": DeviceBatches(inputs, labels, batch_size=batch_size), "shuffle": False}
    keras.utils.set_random_seed(0)
    model = TransferModel(CrossModalEncoder.projection(embedding, hidden_dims=(hidden,)))
    model.compile(optimizer=TrainingConfig().optimizer(), **options["compile"])
    seconds = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)

    history = model.fit(**data, epochs=options["epochs"], verbose=0,
                        callbacks=[StopOnNonFiniteLoss(), EpochTimer()])
    return {"seconds": seconds, "loss": history.history["loss"], "input": options["input"],
            "jit_compile": str(model.jit_compile),
            "steps_per_execution": int(model.steps_per_execution)}


def run_one(backend, towers, args, row_options):
    compile_options = {k: v for k, v in row_options.items() if k != "input"}
    options = {"towers": towers, "pairs": args.pairs, "batch_size": args.batch_size,
               "epochs": args.epochs, "input": row_options.get("input", args.input),
               "compile": compile_options}
    env = {**os.environ, **thread_env(args.threads), "KERAS_BACKEND": backend,
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(here),
                                                     env.get("PYTHONPATH")]))
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(options)], env=env,
                          capture_output=True, text=True, timeout=args.timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        return {"error": proc.stderr[-1500:], "load": load}
    result = json.loads(lines[-1])
    timed = result["seconds"][1:]
    result.update(load=load, pairs_per_s=args.pairs // args.batch_size * args.batch_size
                  / min(timed) if timed else float("nan"))
    return result


def report(records, args):
    lines = [f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"machine: nproc={os.cpu_count()}; threads per framework: "
             f"{args.threads or 'framework defaults'}; input: {args.input}; "
             f"compile: {args.compile}",
             f"{args.pairs} pairs, batch {args.batch_size}, {args.epochs} epochs "
             "(first is warm-up), best timed epoch"]
    for towers in args.towers:
        lines.append(f"towers {towers} {TOWERS[towers]}:")
        lines.append("row        | pairs/s  | x JAX (same round) | round | load | warm-up s | compile")
        for label in records[towers][0]:
            rows = [(r, rec) for r, rec in enumerate(records[towers]) if label in rec]
            good = [(r, rec[label]) for r, rec in rows if "error" not in rec[label]]
            if not good:
                lines.append(f"{label:10} | failed: {rows[0][1][label]['error'][-300:]}")
                continue
            r, best = max(good, key=lambda item: item[1]["pairs_per_s"])
            jax = records[towers][r].get("jax", {})
            ratio = (best["pairs_per_s"] / jax["pairs_per_s"]
                     if "pairs_per_s" in jax else float("nan"))
            lines.append(f"{label:10} | {best['pairs_per_s']:8.0f} | {ratio:18.2f} | {r:5d} "
                         f"| {best['load']:4.1f} | {best['seconds'][0]:9.1f} "
                         f"| jit={best['jit_compile']} "
                         f"spe={best['steps_per_execution']} input={best['input']}")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--towers", nargs="+", default=list(TOWERS), choices=list(TOWERS))
    parser.add_argument("--pairs", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads of every framework (0: their defaults)")
    parser.add_argument("--input", choices=("arrays", "device"), default="arrays")
    parser.add_argument("--compile", default="{}",
                        help="extra compile arguments as JSON (default: the library's)")
    parser.add_argument("--row", nargs=3, action="append", default=[],
                        metavar=("LABEL", "BACKEND", "OPTIONS_JSON"))
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    rows = [(backend, backend, json.loads(args.compile)) for backend in args.backends]
    rows += [(label, backend, json.loads(options)) for label, backend, options in args.row]
    records = {towers: [] for towers in args.towers}
    for round_index in range(args.rounds):
        for towers in args.towers:
            record = {}
            for label, backend, options in rows:
                record[label] = run_one(backend, towers, args, options)
                print(f"round {round_index} {towers} {label}: "
                      f"{record[label].get('pairs_per_s', 'error')}", flush=True)
            records[towers].append(record)
    lines = report(records, args)
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"records": records, "report": lines}, f, indent=1)


if __name__ == "__main__":
    main()
