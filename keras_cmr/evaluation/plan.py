"""The metric plan: requested metric names turned into {output key: (kind, cutoff)}.

`keras_cmr.evaluation.ranking.rank_metrics` computes exactly the plan's entries; validating it
first lets a callback refuse a bad metric name before training starts.
"""

from keras_cmr.utils.checks import check_positive_int

METRIC_NAMES = ("map", "map@r", "r_precision", "precision", "recall", "precision_at_recall@RHO")
# The recall levels of the 11-point precision-recall curve.
RECALL_LEVELS = tuple(i / 10 for i in range(11))


def metric_plan(metrics, top_k, k_values):
    """Validated ({output key: (kind, cutoff)}) for the requested metric names."""
    if isinstance(metrics, str):
        metrics = (metrics,)
    if top_k is not None:
        top_k = check_positive_int(top_k, "`top_k`")
    plan = {}
    for metric in metrics:
        base, _, cutoff = str(metric).partition("@")
        if metric == "map":
            plan["map" if top_k is None else f"map@{top_k}"] = ("map", top_k)
        elif metric in ("map@r", "r_precision"):
            plan[metric] = (metric, None)
        elif base in ("precision", "recall") and not cutoff:
            for k in k_values:
                plan[f"{base}@{check_positive_int(k, '`k_values`')}"] = (base, int(k))
        elif base in ("precision", "recall") and cutoff.isdigit():
            plan[metric] = (base, check_positive_int(int(cutoff), "`k`"))
        elif base == "precision_at_recall":
            plan[metric] = (base, recall_level(cutoff, metric))
        else:
            raise ValueError(
                f"Unknown metric {metric!r}; choose from {METRIC_NAMES} or "
                "'precision@K'/'recall@K'."
            )
    return plan


def recall_level(text, metric):
    """The recall level written after '@' in `metric`, a float in [0, 1]."""
    try:
        level = float(text)
    except ValueError:
        level = None
    if level is None or not 0.0 <= level <= 1.0:
        raise ValueError(f"{metric!r}: the recall level after '@' must be a number in [0, 1].")
    return level
