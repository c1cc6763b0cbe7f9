"""The comparison's plain-text output: the summary over seeds as a table, and progress lines."""

import numpy as np


def summarize(results):
    """Mean and standard deviation over seeds of each method's test figures.

    `results`: `RunResult`s and `RunFailure`s (`keras_cmr.results`); failed runs are left
    out, and a method whose every run failed has no row.
    """
    results = [result for result in results if not result.failed]
    table = {}
    for method in dict.fromkeys(result.method for result in results):
        runs = [result for result in results if result.method == method]
        row = {"seeds": len(runs)}
        for key in ("i2t_map", "t2i_map", "avg_map"):
            values = np.array([run.test[key] for run in runs])
            row[key] = float(values.mean())
            row[key + "_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        row["best_val_avg_map"] = float(np.mean([run.best_val_avg_map for run in runs]))
        table[method] = row
    return table


def format_table(table):
    """A plain-text table: test I2T / T2I / average mAP@all, mean +- std over seeds.

    A row of one seed shows the figure alone: a spread of one run would read as a measured
    standard deviation of zero.
    """
    lines = [f"{'method':<20}{'seeds':>6}{'I2T mAP':>18}{'T2I mAP':>18}{'avg mAP':>18}"
             f"{'val avg':>9}"]
    for method, row in table.items():
        cells = "".join(
            f"{row[key]:>10.4f} +- {row[key + '_std']:.3f}" if row["seeds"] > 1
            else f"{row[key]:>10.4f}{'':9}"
            for key in ("i2t_map", "t2i_map", "avg_map"))
        lines.append(f"{method:<20}{row['seeds']:>6}{cells}{row['best_val_avg_map']:>9.4f}")
    return "\n".join(lines)


def format_duration(seconds):
    """Seconds as "42 s", "3 min 05 s" or "2 h 07 min"."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def format_progress(index, total, method, seed, elapsed, run_seconds):
    """One progress line of a comparison, after its `index`-th run (from 1) of `total`.

    `elapsed`: seconds since the comparison started; `run_seconds`: the seconds of each run
    finished in this session. What is left is estimated as their mean times the runs left
    (runs differ in length: a transfer method's first run of a seed also trains its source).
    """
    left = total - index
    line = (f"[{index}/{total}] {method} seed {seed}: done, {format_duration(elapsed)} "
            "elapsed")
    if left and run_seconds:
        estimate = float(np.mean(run_seconds)) * left
        line += f", about {format_duration(estimate)} left ({left} run{'s' * (left > 1)})"
    return line
