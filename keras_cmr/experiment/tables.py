"""The comparison's summary: mean and sample standard deviation over seeds, as a table."""

import numpy as np


def summarize(results):
    """Mean and standard deviation over seeds of each method's test figures."""
    table = {}
    for method in dict.fromkeys(result["method"] for result in results):
        runs = [result for result in results if result["method"] == method]
        row = {"seeds": len(runs)}
        for key in ("i2t_map", "t2i_map", "avg_map"):
            values = np.array([run["test"][key] for run in runs])
            row[key] = float(values.mean())
            row[key + "_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        row["best_val_avg_map"] = float(np.mean([run["best_val_avg_map"] for run in runs]))
        table[method] = row
    return table


def format_table(table):
    """A plain-text table: test I2T / T2I / average mAP@all, mean +- std over seeds."""
    lines = [f"{'method':<20}{'seeds':>6}{'I2T mAP':>18}{'T2I mAP':>18}{'avg mAP':>18}"
             f"{'val avg':>9}"]
    for method, row in table.items():
        cells = "".join(f"{row[key]:>10.4f} +- {row[key + '_std']:.3f}"
                        for key in ("i2t_map", "t2i_map", "avg_map"))
        lines.append(f"{method:<20}{row['seeds']:>6}{cells}{row['best_val_avg_map']:>9.4f}")
    return "\n".join(lines)
