"""Paired tests for comparisons of many arms: p-values, Holm's correction, equivalence, power.

The interval rule of `trainers.evaluation.verdicts` answers one comparison. A report of
many (the ablation) needs more, or its "wins" are the best of many draws:

- a two-sided paired t-test p-value per comparison;
- Holm's step-down adjustment within a family (the declared primary comparisons are one
  family, every other comparison of the same metric another), which controls the
  family-wise error rate at alpha for any dependence between the tests;
- two one-sided tests (TOST) against an equivalence margin m: "equivalent" needs both
  H0: mean <= −m and H0: mean >= m rejected, so "not significant" is never read as "equal";
- the smallest effect the comparison detects with 80% power at its (adjusted) level, from
  the noncentral t distribution with the observed spread of the differences.

References:
  S. Holm (1979), "A simple sequentially rejective multiple test procedure", Scand. J. Stat.
  D. J. Schuirmann (1987), "A comparison of the two one-sided tests procedure and the power
  approach for assessing the equivalence of average bioavailability", J. Pharmacokin. Biopharm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import optimize, stats

ALPHA = 0.05
POWER = 0.8


class PairedTest(NamedTuple):
    """A paired comparison a − b over n seeds.

    Attributes:
      mean, sd: mean and sample standard deviation of the differences.
      n: number of pairs.
      p: two-sided paired t-test p-value of mean = 0 (nan below two pairs or non-finite).
      p_equivalence: TOST p-value of |mean| >= margin (nan without a margin).
      margin: the equivalence margin (nan without one).
    """

    mean: float
    sd: float
    n: int
    p: float
    p_equivalence: float
    margin: float


def _t_stat(diff: np.ndarray, centre: float) -> float:
    sd = float(np.std(diff, ddof=1))
    shift = float(np.mean(diff)) - centre
    if sd == 0.0:
        return math.copysign(math.inf, shift) if shift else 0.0
    return shift / (sd / math.sqrt(len(diff)))


def paired_test(a: np.ndarray, b: np.ndarray, margin: float | None = None) -> PairedTest:
    """The t-test of a − b = 0 and, with a margin m > 0, the TOST of |a − b| >= m."""
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    n = len(diff)
    m = math.nan if margin is None else float(margin)
    if n < 2 or not np.all(np.isfinite(diff)):
        mean = float(np.mean(diff)) if n else math.nan
        return PairedTest(mean, math.nan, n, math.nan, math.nan, m)
    dof = n - 1
    p = float(2 * stats.t.sf(abs(_t_stat(diff, 0.0)), dof))
    p_equivalence = math.nan
    if margin is not None:
        if not margin > 0:
            raise ValueError(f"an equivalence margin must be > 0, got {margin}")
        p_above = stats.t.sf(_t_stat(diff, -m), dof)  # H0: mean <= -m
        p_below = stats.t.cdf(_t_stat(diff, m), dof)  # H0: mean >= +m
        p_equivalence = float(max(p_above, p_below))
    return PairedTest(float(np.mean(diff)), float(np.std(diff, ddof=1)), n, p, p_equivalence, m)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values of one family, in the input order.

    A nan p-value (a comparison that could not be tested) stays nan but still counts in
    the family's size, so leaving a test out never makes the others look stronger.
    """
    p = np.asarray(p_values, np.float64)
    adjusted = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, (len(p) - rank) * p[index])
        adjusted[index] = min(1.0, running)
    return adjusted


def verdict_of_tests(mean: float, p: float, p_equivalence: float, alpha: float = ALPHA) -> str:
    """'wins' / 'loses' (a − b below / above zero, p < alpha), 'equivalent', or 'inconclusive'.

    Lower is better (losses). Pass adjusted p-values to get a family-wise verdict.
    """
    if p < alpha:
        return "wins" if mean < 0 else "loses"
    if p_equivalence < alpha:
        return "equivalent"
    return "inconclusive"


def comparison_verdict(
    a_diverged: bool, b_diverged: bool, mean: float, p: float, p_equivalence: float
) -> str:
    """`verdict_of_tests`, after divergence: 'diverges' if a diverged, 'wins' if only b did."""
    if a_diverged:
        return "diverges"
    if b_diverged:
        return "wins"
    return verdict_of_tests(mean, p, p_equivalence)


def power_at(effect: float, sd: float, n: int, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired t-test at level alpha to detect a true mean `effect`."""
    dof = n - 1
    critical = stats.t.ppf(1 - alpha / 2, dof)
    noncentrality = abs(effect) / sd * math.sqrt(n)
    upper = float(stats.nct.sf(critical, dof, noncentrality))
    # the wrong-sign tail is below P(T < 0) = Phi(-noncentrality); scipy returns nan for it
    # far out, where it is negligible
    lower = float(stats.nct.cdf(-critical, dof, noncentrality))
    return upper + (lower if math.isfinite(lower) else 0.0)


def detectable_effect(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest |mean difference| the paired t-test detects with `power` at level alpha.

    nan below two pairs or for a non-finite spread; 0 when every difference is the same.
    """
    if n < 2 or not math.isfinite(sd):
        return math.nan
    if sd == 0.0:
        return 0.0
    # the normal approximation is a lower bound; doubling from it keeps the noncentrality
    # small (scipy's noncentral t is nan far in its tail)
    upper = (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * sd / math.sqrt(n)
    while power_at(upper, sd, n, alpha) < power:
        upper *= 2
    return float(optimize.brentq(lambda e: power_at(e, sd, n, alpha) - power, 0.0, upper))
