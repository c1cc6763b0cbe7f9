"""Paired comparison of two methods over seeds: mean difference, 95% interval, verdict.

Run i of method A and run i of method B share seed i (same split, same initialisation
stream), so the per-seed differences `a_i - b_i` are the unit of analysis. Two intervals:

- "t": the paired Student-t interval, `mean(d) +- t_{(1+c)/2, n-1} * std(d, ddof=1) / sqrt(n)`,
  i.e. the interval of `scipy.stats.ttest_rel(a, b)`.
- "bootstrap": `scipy.stats.bootstrap` of the mean difference (BCa, `n_resamples` resamples,
  seeded), which does not assume normal differences.

The verdict is "better" when the whole interval is above 0, "worse" when below 0, else "tie".
When every difference is the same value the interval is that value (no spread to estimate).
Only numpy and scipy run here: results are identical on every Keras backend.
"""

import numbers

import numpy as np
import scipy.stats

METHODS = ("t", "bootstrap")


def _check_scores(a, b):
    a, b = (np.asarray(values, dtype=np.float64) for values in (a, b))
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"paired scores must be two 1-D arrays of equal length (one score per "
                         f"seed), got shapes {a.shape} and {b.shape}")
    if len(a) < 2:
        raise ValueError(f"a paired interval needs at least 2 seeds, got {len(a)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("paired scores must be finite (a NaN or infinite score was given)")
    return a, b


def verdict(interval):
    """"better" if the interval lies above 0, "worse" if below 0, else "tie"."""
    low, high = interval
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "tie"


def paired_difference(a, b, confidence=0.95, method="t", seed=0, n_resamples=9999):
    """Mean of the per-seed differences `a - b` with a confidence interval and a verdict.

    Args:
        a: scores of the method under test, one per seed.
        b: scores of the rival, same seeds in the same order.
        confidence: confidence level of the interval, in (0, 1).
        method: "t" (paired t interval) or "bootstrap" (BCa bootstrap of the mean).
        seed: seed of the bootstrap resampling (unused by "t").
        n_resamples: bootstrap resamples.

    Returns:
        dict with "mean" (mean difference), "interval" ([low, high]), "n" (seeds),
        "confidence", "method" and "verdict" ("better" / "tie" / "worse").

    Raises:
        ValueError: on arrays of different or too short lengths, non-finite scores, a
            confidence outside (0, 1) or an unknown method.
    """
    a, b = _check_scores(a, b)
    if (isinstance(confidence, bool) or not isinstance(confidence, numbers.Real)
            or not 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    differences = a - b
    mean = float(differences.mean())
    if np.all(differences == differences[0]):
        interval = (mean, mean)
    elif method == "t":
        result = scipy.stats.ttest_rel(a, b).confidence_interval(confidence_level=confidence)
        interval = (float(result.low), float(result.high))
    else:
        result = scipy.stats.bootstrap((differences,), np.mean, confidence_level=confidence,
                                       n_resamples=n_resamples, method="BCa",
                                       rng=np.random.default_rng(seed))
        interval = (float(result.confidence_interval.low),
                    float(result.confidence_interval.high))
    return {"mean": mean, "interval": list(interval), "n": int(len(differences)),
            "confidence": float(confidence), "method": method, "verdict": verdict(interval)}


def compare_to_rivals(scores, reference, confidence=0.95, method="t", seed=0):
    """`paired_difference(scores[reference], scores[rival])` for every other method.

    Args:
        scores: dict method name -> per-seed scores (same seeds, same order for every method).
        reference: the method under test (e.g. "met").
        confidence, method, seed: as in `paired_difference`.

    Returns:
        dict rival name -> the dict of `paired_difference` (reference minus rival).

    Raises:
        ValueError: if `reference` is not in `scores`, or as `paired_difference`.
    """
    if reference not in scores:
        raise ValueError(f"reference method {reference!r} has no scores; methods: "
                         f"{sorted(scores)}")
    return {rival: paired_difference(scores[reference], values, confidence, method, seed)
            for rival, values in scores.items() if rival != reference}


def verdict_table(comparisons):
    """Counts of verdicts per rival over several settings (data sets, noise rates).

    Args:
        comparisons: dict setting -> the dict of `compare_to_rivals` for that setting.

    Returns:
        dict rival -> {"better": count, "tie": count, "worse": count}, rivals sorted by name.
    """
    table = {}
    for rivals in comparisons.values():
        for rival, result in rivals.items():
            counts = table.setdefault(rival, {"better": 0, "tie": 0, "worse": 0})
            counts[result["verdict"]] += 1
    return dict(sorted(table.items()))


def paired_comparisons(results, reference="met", key="avg_map", confidence=0.95):
    """`reference` minus every other method on the test `key`, paired by seed (95% paired t).

    Args:
        results: `keras_cmr.results.RunResult`s and `RunFailure`s, as
            `keras_cmr.experiment.compare` returns them (failed runs left out).
        reference: the method under test.
        key: the test figure compared ("avg_map", "i2t_map", "t2i_map").
        confidence: confidence level of the paired t interval.

    Returns:
        dict rival -> {"mean", "interval", "n", "verdict", ...} of `paired_difference` over
        the seeds both methods ran (seeds matched by number, not by position), rivals in the
        order they first appear. A rival sharing fewer than 2 seeds with `reference` is left
        out (no interval).

    Raises:
        ValueError: if `reference` has no result, a run lacks `key`, or a method has two
            runs of one seed.
    """
    scores = {}
    for result in results:
        if result.failed:
            continue
        by_seed = scores.setdefault(result.method, {})
        if result.seed in by_seed:
            raise ValueError(f"method {result.method!r} has two runs of seed "
                             f"{result.seed}; pairing needs one per seed")
        if key not in result.test:
            raise ValueError(f"a run of {result.method!r} has no test figure {key!r}; it "
                             f"has {sorted(result.test)}")
        by_seed[result.seed] = result.test[key]
    if reference not in scores:
        raise ValueError(f"reference method {reference!r} has no results; methods: "
                         f"{sorted(scores)}")
    comparisons = {}
    for rival, by_seed in scores.items():
        seeds = sorted(set(by_seed) & set(scores[reference]))
        if rival == reference or len(seeds) < 2:
            continue
        comparisons[rival] = paired_difference([scores[reference][s] for s in seeds],
                                               [by_seed[s] for s in seeds], confidence)
    return comparisons
