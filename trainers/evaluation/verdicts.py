"""The one verdict rule of every report: a paired t interval of the mean difference.

Two optimizers (or two ablation arms) run on the same seeds, so each seed gives one paired
difference d = a − b of their final losses (lower is better). Over n seeds the 95% interval
is mean(d) ± t_{0.975, n−1} · SE(d), on n − 1 degrees of freedom. Its verdict for a:

- "diverges": a run of a is not finite;
- "wins": b diverged while a did not, or the whole interval lies below zero;
- "loses": the whole interval lies above zero;
- "equivalent": an equivalence margin m was set and the interval lies inside [−m, m];
- "inconclusive": anything else (the interval holds zero, or there are under two seeds).
  Inconclusive is not equal: the data cannot tell the two apart at this many seeds.

References:
  Student's paired t interval; equivalence by the interval-inclusion rule (two one-sided
  tests at level 0.05 correspond to a 90% interval; this rule, at the 95% interval, is
  stricter).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import stats

from trainers.evaluation.statistics import mean_and_se

VERDICTS = ("wins", "equivalent", "inconclusive", "loses", "diverges")


class PairedInterval(NamedTuple):
    """The mean paired difference a − b, its interval and the degrees of freedom."""

    mean: float
    lower: float
    upper: float
    dof: int


def paired_interval(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> PairedInterval:
    """The t interval of the mean of a − b over paired seeds (1-D arrays of equal length).

    The bounds are nan when a difference is not finite or there are fewer than two pairs.
    """
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    n = len(diff)
    mean = float(np.mean(diff)) if n else math.nan
    if n < 2 or not np.all(np.isfinite(diff)):
        return PairedInterval(mean, math.nan, math.nan, max(n - 1, 0))
    _, se = mean_and_se(diff)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
    return PairedInterval(mean, mean - half, mean + half, n - 1)


def interval_verdict(interval: PairedInterval, margin: float | None = None) -> str:
    """The verdict of a finite comparison from its interval (see the module doc)."""
    lower, upper = interval.lower, interval.upper
    if math.isnan(lower) or math.isnan(upper):
        return "inconclusive"
    if upper < 0:
        return "wins"
    if lower > 0:
        return "loses"
    if margin is not None and -margin <= lower and upper <= margin:
        return "equivalent"
    return "inconclusive"


def paired_verdict(
    a: np.ndarray, b: np.ndarray, margin: float | None = None, confidence: float = 0.95
) -> tuple[PairedInterval, str]:
    """The interval of a − b and the verdict for a, divergence included (see the module doc)."""
    interval = paired_interval(a, b, confidence)
    if not np.all(np.isfinite(a)):
        return interval, "diverges"
    if not np.all(np.isfinite(b)):
        return interval, "wins"
    return interval, interval_verdict(interval, margin)


def rule_sentence(confidence: float = 0.95) -> str:
    """The rule in one sentence, for the reports that apply it."""
    return (
        f"Verdict: the {confidence:.0%} paired t interval of the mean difference over the same "
        "seeds (n − 1 degrees of freedom): wins or loses where it excludes zero, inconclusive "
        "where it holds zero (not the same as equal), diverges where a run is not finite."
    )
