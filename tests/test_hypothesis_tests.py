"""Paired t p-values, Holm, TOST and detectable effects against independent computations."""

import math

import numpy as np
import pytest
from scipy import stats

from trainers.evaluation.hypothesis_tests import (
    detectable_effect,
    holm,
    paired_test,
    power_at,
    verdict_of_tests,
)


def _pairs(seed, n, shift, sd=1.0):
    rng = np.random.default_rng(seed)
    b = rng.normal(size=n)
    return b + shift + sd * rng.normal(size=n), b


@pytest.mark.parametrize("shift", [0.0, 0.3, -1.0])
def test_p_value_matches_scipy_paired_t_test(shift):
    a, b = _pairs(0, 12, shift)
    assert paired_test(a, b).p == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-10)


def test_equivalence_p_is_the_larger_one_sided_p():
    a, b = _pairs(1, 16, 0.05, sd=0.2)
    margin = 0.2
    diff = a - b
    above = stats.ttest_1samp(diff, -margin, alternative="greater").pvalue
    below = stats.ttest_1samp(diff, margin, alternative="less").pvalue
    test = paired_test(a, b, margin=margin)
    assert test.p_equivalence == pytest.approx(max(above, below), rel=1e-10)
    assert test.p_equivalence < 0.05  # a small shift, a tight spread: equivalent at this margin
    assert paired_test(a, b, margin=0.01).p_equivalence > 0.5  # a margin below the shift


def test_no_margin_no_equivalence_and_bad_margin_refused():
    a, b = _pairs(2, 8, 0.0)
    assert math.isnan(paired_test(a, b).p_equivalence)
    with pytest.raises(ValueError, match="margin"):
        paired_test(a, b, margin=0.0)


def test_untestable_pairs_give_nan():
    assert math.isnan(paired_test(np.array([1.0]), np.array([0.0])).p)
    assert math.isnan(paired_test(np.array([1.0, np.inf]), np.array([0.0, 0.0])).p)


def test_identical_shift_is_certain():
    b = np.arange(5.0)
    assert paired_test(b + 1.0, b).p == 0.0
    assert paired_test(b, b).p == 1.0


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.06
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])


def test_holm_counts_untested_comparisons_and_caps_at_one():
    adjusted = holm([0.02, math.nan, 0.6])
    assert adjusted[0] == pytest.approx(0.06)  # family of 3, the nan included
    assert math.isnan(adjusted[1])
    assert adjusted[2] == 1.0


def test_holm_never_below_raw_and_one_test_unchanged():
    p = np.random.default_rng(3).uniform(size=9)
    assert np.all(holm(p) >= p)
    assert holm([0.013])[0] == pytest.approx(0.013)


@pytest.mark.parametrize(
    "mean, p, p_eq, verdict",
    [
        (-0.1, 0.01, math.nan, "wins"),
        (0.1, 0.01, math.nan, "loses"),
        (0.01, 0.4, 0.02, "equivalent"),
        (0.01, 0.4, 0.2, "inconclusive"),
        (0.01, math.nan, math.nan, "inconclusive"),
    ],
)
def test_verdict_from_p_values(mean, p, p_eq, verdict):
    assert verdict_of_tests(mean, p, p_eq) == verdict


def test_detectable_effect_has_the_asked_power_by_simulation():
    n, sd, alpha = 16, 0.5, 0.05
    effect = detectable_effect(sd, n, alpha)
    assert power_at(effect, sd, n, alpha) == pytest.approx(0.8, abs=1e-6)
    rng = np.random.default_rng(4)
    diffs = effect + sd * rng.normal(size=(20000, n))
    p = stats.ttest_1samp(diffs, 0.0, axis=1).pvalue
    assert np.mean(p < alpha) == pytest.approx(0.8, abs=0.015)


def test_detectable_effect_near_the_normal_approximation_for_many_pairs():
    n, sd = 400, 1.0
    normal = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * sd / math.sqrt(n)
    assert detectable_effect(sd, n) == pytest.approx(normal, rel=0.01)


def test_detectable_effect_grows_with_a_stricter_level_and_edge_cases():
    assert detectable_effect(1.0, 16, alpha=0.05 / 3) > detectable_effect(1.0, 16)
    assert detectable_effect(0.0, 16) == 0.0
    assert math.isnan(detectable_effect(1.0, 1))


def test_detectable_effect_with_two_pairs_where_scipy_tails_are_nan():
    """K = 2 (one degree of freedom): the far wrong-sign tail is nan in scipy, and negligible."""
    effect = detectable_effect(0.0187, 2)
    assert power_at(effect, 0.0187, 2) == pytest.approx(0.8, abs=1e-6)
    assert effect > detectable_effect(0.0187, 3) > detectable_effect(0.0187, 16)
