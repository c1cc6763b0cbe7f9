"""The report of benchmarks/training.py: rates per method, the table, the targets, the setup.

Each method's result (from training_worker.py) gets pairs/s, GFLOP/s, % of the matmul peak and
the ratio to the torch-eager reference loop, from its best timed epoch.
"""

import statistics

from training_problem import step_flops, steps_per_epoch

# pairs/s of each keras-cmr row over torch-eager's (issue #5's targets).
TARGETS = {"keras-cmr[jax]": 2.0, "keras-cmr[tensorflow]": 1.0,
           "keras-cmr[tensorflow,xla]": 1.0, "keras-cmr[torch]": 0.8}


def summarize(records, cfg, peak):
    """Adds pairs/s, GFLOP/s, % of peak and x torch-eager to each record (best timed epoch)."""
    for r in records:
        if "error" in r:
            continue
        if r.get("fit_input") == "arrays":  # every pair, the last batch partial
            pairs = cfg["pairs"]
        else:
            pairs = steps_per_epoch(cfg) * cfg["batch_size"]
        flops = step_flops(cfg) * pairs / cfg["batch_size"]  # pro rata for a partial batch
        r["pairs_per_epoch"] = pairs
        r["epoch_best_s"] = min(r["epoch_s"])
        r["epoch_median_s"] = statistics.median(r["epoch_s"])
        r["pairs_per_s"] = pairs / r["epoch_best_s"]
        r["gflops"] = flops / r["epoch_best_s"] / 1e9
        r["pct_of_matmul_peak"] = 100.0 * r["gflops"] / peak
    base = next((r for r in records if r["method"] == "torch-eager" and "pairs_per_s" in r), None)
    for r in records:
        if base is not None and "pairs_per_s" in r:
            r["x_torch_eager"] = r["pairs_per_s"] / base["pairs_per_s"]
    return records


def format_table(records):
    cols = (f"{'method':<26} | {'backend':<10} | {'pairs/s':>9} | {'epoch s':>8} | "
            f"{'x torch-eager':>13} | {'GFLOP/s':>8} | {'% of matmul peak':>16} | notes")
    lines = [cols, "-" * (len(cols) + 30)]
    for r in records:
        if "error" in r:
            lines.append(f"{r['method']:<26} | {r['backend']:<10} | ERROR {r['error'][:150]}")
            continue
        notes = []
        if "jit_compile_resolved" in r:
            notes.append(f"jit_compile={r['jit_compile_requested']}->"
                         f"{r['jit_compile_resolved']}")
            if r["steps_per_execution"] != 1:
                notes.append(f"spe={r['steps_per_execution']}")
            if r["fit_input"] != "pairbatches" or r["verbose"]:
                notes.append(f"input={r['fit_input']} verbose={r['verbose']}")
            if r.get("traces_per_epoch") is not None:
                notes.append(f"traces/epoch={r['traces_per_epoch'][1:]}")
            if r.get("compiles_per_epoch") is not None:
                what = "xla compiles" if r["backend"] == "jax" else "dynamo graphs"
                notes.append(f"{what}/epoch={r['compiles_per_epoch'][1:]}")
        if "optimizer" in r:
            notes.append(r["optimizer"])
        notes.append(f"warm-up {r['warmup_s']:.1f} s")
        ratio = r.get("x_torch_eager")
        lines.append(
            f"{r['method']:<26} | {r['backend']:<10} | {r['pairs_per_s']:>9.0f} | "
            f"{r['epoch_best_s']:>8.3f} | {'-' if ratio is None else f'{ratio:.2f}':>13} | "
            f"{r['gflops']:>8.1f} | {r['pct_of_matmul_peak']:>15.1f}% | {'; '.join(notes)}")
    return lines


def target_lines(records):
    lines = []
    for r in records:
        goal = TARGETS.get(r["method"])
        if goal is None or "x_torch_eager" not in r:
            continue
        verdict = "PASS" if r["x_torch_eager"] >= goal else "MISS"
        lines.append(f"{verdict}: {r['method']} pairs/s >= {goal:g}x torch-eager "
                     f"(measured {r['x_torch_eager']:.2f}x)")
    return lines


def describe(cfg, peak, matmul):
    steps = steps_per_epoch(cfg)
    rates = ", ".join(f"{k} {v:.1f}" for k, v in matmul.items() if isinstance(v, float))
    errors = [p["error"] for p in matmul.get("probes", []) if "error" in p]
    return [
        f"shapes: batch {cfg['batch_size']}, features {cfg['dim']} (image and text), towers "
        f"{cfg['dim']}->{cfg['hidden']}->{cfg['embedding']} (GELU, dropout 0.1, L2), "
        f"{cfg['classes']} classes, Adam(lr 1e-3, beta_1 0.5)",
        f"epoch: {steps} batches = {steps * cfg['batch_size']} of {cfg['pairs']} random pairs "
        f"(remainder dropped), 1 warm-up + {cfg['epochs']} timed epochs, best reported",
        f"FLOPs/step (matmuls): {step_flops(cfg) / 1e9:.3f} GFLOP; matmul peak at the step's "
        f"shapes: {peak:.1f} GFLOP/s, best of a probe before and after the methods "
        f"({rates or errors or '?'})",
    ]


def check_lines(records):
    """Each reference loop's agreement with keras_cmr and the threads each method used."""
    lines = []
    for r in records:
        if "check" in r:
            c = r["check"]
            lines.append(f"check {r['method']}: loss max |diff| vs keras_cmr.soft_contrastive "
                         f"{c['loss_max_abs_diff']:.1e}, tower max |diff| vs ProjectionTower "
                         f"{c['tower_max_abs_diff']:.1e} (<= 1e-5)")
        if "threads" in r:
            lines.append(f"threads {r['method']}: {r['threads']}")
    return lines
