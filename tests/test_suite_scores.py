"""Suite scores: IQM and its bootstrap interval, speed-up over Adam, ratios, verdicts, rows."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from trainers.core.trajectories import Trajectories
from trainers.evaluation.evaluate import ContenderResult, TaskResult
from trainers.evaluation.statistics import best_baseline
from trainers.evaluation.suite_scores import (
    adam_steps_to_reach,
    aggregate,
    bootstrap_interval,
    geometric_mean,
    iqm,
    score_suite,
    score_task,
    speedup_over_adam,
)
from trainers.reporting.evaluation_report import loss_ratio, results_json
from trainers.reporting.suite_report import aggregate_rows, task_rows

# --- IQM -----------------------------------------------------------------------------------


def test_iqm_of_eight_values_is_the_mean_of_the_middle_four():
    values = [100.0, 1.0, 2.0, 3.0, 4.0, 5.0, 20.0, -50.0]  # sorted: -50, 1, [2, 3, 4, 5], 20, 100
    assert iqm(values) == pytest.approx((2 + 3 + 4 + 5) / 4)


def test_iqm_drops_whole_values_when_n_is_not_a_multiple_of_four():
    # n = 10: floor(10 / 4) = 2 values dropped at each end, not 2.5 (no partial weights, which
    # would give (0.5 * 2 + 3 + 4 + 5 + 6 + 0.5 * 9) / 5 = 4.7).
    values = [100.0, 0.0, 9.0, 1.0, 6.0, 2.0, 10.0, 5.0, 3.0, 4.0]
    assert iqm(values) == pytest.approx((2 + 3 + 4 + 5 + 6 + 9) / 6)
    assert iqm(values) == pytest.approx(stats.trim_mean(values, 0.25))
    assert iqm([9.0, 1.0, 2.0, 3.0, 100.0]) == pytest.approx((2 + 3 + 9) / 3)  # n = 5: drop 1
    assert iqm([1.0, 2.0, 9.0]) == pytest.approx(4.0)  # under 4 values: the mean
    assert math.isnan(iqm([]))


# --- bootstrap interval --------------------------------------------------------------------


def hand_iqm(x):
    x = sorted(x)
    k = len(x) // 4
    middle = x[k : len(x) - k]
    return sum(middle) / len(middle)


def test_bootstrap_interval_matches_a_hand_written_resampling_loop():
    values = np.random.default_rng(3).normal(1.0, 0.5, 9)
    resamples, seed = 1000, 7
    draws = np.random.default_rng(seed).integers(0, 9, size=(resamples, 9))
    statistics = sorted(hand_iqm([values[j] for j in row]) for row in draws)
    expected = (statistics[math.floor(0.025 * 999)], statistics[math.ceil(0.975 * 999)])
    got = bootstrap_interval(values, iqm, resamples, 0.95, seed)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    generator = bootstrap_interval(values, iqm, resamples, 0.95, np.random.default_rng(seed))
    np.testing.assert_allclose(generator, expected, rtol=1e-12)


def test_bootstrap_interval_is_deterministic_and_contains_the_iqm():
    values = np.random.default_rng(0).lognormal(0.0, 0.3, 12)
    first = bootstrap_interval(values, resamples=500, rng=1)
    assert first == bootstrap_interval(values, resamples=500, rng=1)
    assert first != bootstrap_interval(values, resamples=500, rng=2)
    assert first[0] < iqm(values) < first[1]


def test_bootstrap_interval_of_constant_scores_is_a_point():
    low, high = bootstrap_interval([0.7] * 6, resamples=200, rng=0)
    assert low == high == pytest.approx(0.7, rel=1e-12)


def test_bootstrap_interval_with_a_divergence_has_an_infinite_upper_bound_not_nan():
    low, high = bootstrap_interval([1.0, 2.0, math.inf], resamples=400, rng=0)
    assert low == pytest.approx(1.0) and high == math.inf


def test_geometric_mean():
    assert geometric_mean([0.5, 2.0, 4.0]) == pytest.approx(4.0 ** (1 / 3))
    assert geometric_mean([0.5, 0.0]) == 0.0 and geometric_mean([0.5, math.inf]) == math.inf


# --- speed-up over Adam --------------------------------------------------------------------

LINEAR_STEPS = np.arange(0, 101, 10)
LINEAR_CURVE = 1.0 - LINEAR_STEPS / 100  # Adam's mean curve, 1 -> 0 over 100 steps


def test_speedup_on_a_linear_adam_curve():
    result = speedup_over_adam(LINEAR_STEPS, LINEAR_CURVE, [0.4, 0.6], 25, 0.01, 0.04)
    assert result.adam_steps == pytest.approx(50.0)  # Adam reaches the mean 0.5 at step 50
    assert result.steps == pytest.approx(2.0)
    assert result.wallclock == pytest.approx(50 * 0.01 / (25 * 0.04))
    assert not result.censored and not result.diverged


def test_adam_steps_interpolate_linearly_between_recorded_steps():
    assert adam_steps_to_reach([0, 40, 100], [1.0, 0.6, 0.0], 0.5) == pytest.approx((50.0, True))
    # A rise after a dip counts as the best loss so far (the running minimum, as
    # learned_optimization's normalizer): 0.3 is crossed halfway from 0.4 (step 20) to 0.2.
    steps, curve = [0, 10, 20, 30], [1.0, 0.4, 0.8, 0.2]
    assert adam_steps_to_reach(steps, curve, 0.3) == pytest.approx((25.0, True))
    assert adam_steps_to_reach(steps, curve, 0.5) == pytest.approx((10 * 0.5 / 0.6, True))
    assert adam_steps_to_reach(steps, curve, 1.5) == (0.0, True)  # reached at the start


def test_speedup_is_censored_where_adam_never_reaches_the_loss():
    curve = np.maximum(LINEAR_CURVE, 0.3)
    result = speedup_over_adam(LINEAR_STEPS, curve, [0.1, 0.1], 25, 0.01, 0.02)
    assert result.censored and not result.diverged
    assert result.steps == pytest.approx(100 / 25)  # a lower bound: Adam's whole run
    assert result.wallclock == pytest.approx(100 * 0.01 / (25 * 0.02))


def test_speedup_of_a_diverged_learned_optimizer_is_zero():
    result = speedup_over_adam(LINEAR_STEPS, LINEAR_CURVE, [0.1, math.nan], 25, 0.01, 0.02)
    assert result.diverged and result.steps == 0.0 and result.wallclock == 0.0
    worse = speedup_over_adam(LINEAR_STEPS, LINEAR_CURVE, [2.0, 2.0], 25)
    assert worse.steps == 0.0 and not worse.diverged and math.isnan(worse.wallclock)


# --- per-task ratios and verdicts ----------------------------------------------------------


def row(label, final, *, learned=False, test=None, curve=None, seconds=0.001):
    out = {"optimizer": label, "learned": learned, "per_seed_final_loss": list(final)}
    out["step_seconds"] = seconds
    if test is not None:
        out["per_seed_test_loss"] = list(test)
    if curve is not None:
        out["curve_steps"], out["mean_curve"] = [int(s) for s in curve[0]], list(curve[1])
    return out


def task(label, *rows, steps=100):
    return {"task": label, "family": label, "steps": steps, "optimizers": list(rows)}


QUAD = task(  # the learned optimizer loses on training loss and wins on test loss
    "quad",
    row(
        "adam",
        [0.19, 0.21, 0.2, 0.2],
        test=[2.0, 2.1, 1.9, 2.0],
        curve=(LINEAR_STEPS, 1 - 0.008 * LINEAR_STEPS),
    ),
    row("sgd", [0.5, 0.52, 0.48, 0.5], test=[1.6, 1.7, 1.5, 1.6]),
    row("lstm", [0.6, 0.62, 0.58, 0.6], learned=True, test=[0.8, 0.82, 0.78, 0.8], seconds=0.002),
)
MLP = task(  # inconclusive on both; below Adam's best training loss (a censored speed-up)
    "mlp",
    row("adam", [0.35, 0.25, 0.35, 0.25], test=[1.0] * 4, curve=([0, 50, 100], [1.0, 0.5, 0.3])),
    row("lstm", [0.2, 0.3, 0.1, 0.28], learned=True, test=[0.9, 1.1, 0.8, 1.2], seconds=0.002),
)
RNN = task(  # the learned optimizer diverges on one seed; no test loss
    "rnn",
    row("adam", [0.5, 0.5, 0.4, 0.6], curve=([0, 100], [1.0, 0.5])),
    row("lstm", [0.5, math.nan, 0.4, 0.3], learned=True),
)


def test_ratios_and_verdicts_use_the_best_baseline_of_each_loss():
    score = score_task(QUAD)
    assert score.train.baseline == "adam" and score.test.baseline == "sgd"
    assert score.train.ratio == pytest.approx(0.6 / 0.2)
    assert score.train.verdict == "loses"
    assert score.test.ratio == pytest.approx(0.8 / 1.6)
    assert score.test.verdict == "wins"
    assert score.speedup.adam_steps == pytest.approx(50.0)  # 1 - 0.008 s = 0.6
    assert score.speedup.wallclock == pytest.approx(50 * 0.001 / (100 * 0.002))


def test_verdicts_inconclusive_equivalent_and_diverged():
    mlp = score_task(MLP)
    assert mlp.train.ratio == pytest.approx(0.22 / 0.3)
    assert (mlp.train.verdict, mlp.test.verdict) == ("inconclusive", "inconclusive")
    assert mlp.speedup.censored and mlp.speedup.steps == pytest.approx(1.0)
    close = task(
        "close", row("adam", [1.0, 1.1, 0.9, 1.0]), row("l", [1.001, 1.1, 0.9, 1.0], learned=True)
    )
    assert score_task(close, margin=0.05).train.verdict == "equivalent"
    assert score_task(close).train.verdict == "inconclusive"
    rnn = score_task(RNN)
    assert rnn.train.ratio == math.inf and rnn.train.verdict == "diverges" and rnn.speedup.diverged
    assert rnn.test.baseline is None and math.isnan(rnn.test.ratio) and rnn.test.verdict is None


def test_learned_optimizer_is_chosen_by_label_and_old_results_have_no_speedup():
    two = task(
        "two",
        row("adam", [1.0, 1.0]),
        row("a", [0.5, 0.5], learned=True),
        row("b", [2.0, 2.0], learned=True),
    )
    with pytest.raises(ValueError, match="among"):
        score_task(two)
    assert score_task(two, learned="b").train.ratio == pytest.approx(2.0)
    assert math.isnan(score_task(two, learned="a").speedup.steps)  # no mean_curve stored


def runs(curves, test, seconds):
    curves = np.asarray(curves, np.float64)[None]  # [1, K, P]
    metrics = {"test_loss": np.asarray(test, np.float64)[None]}
    return Trajectories(np.array([0, 5, 10]), curves, np.ones((1, 3, 10)), metrics, seconds)


def test_task_results_score_as_their_results_json():
    adam = runs([[2.0, 1.0, 0.5], [2.0, 1.2, 0.7], [2.0, 1.1, 0.6]], [1.0, 1.1, 1.2], 0.02)
    sgd = runs([[2.0, 1.5, 0.9], [2.0, 1.6, 1.0], [2.0, 1.4, 0.8]], [0.9, 1.0, 1.1], 0.01)
    lstm = runs([[2.0, 1.0, 0.8], [2.0, 0.9, 0.9], [2.0, 1.1, 1.0]], [1.2, 1.3, 1.4], 0.04)
    contenders = (ContenderResult("adam", False, adam), ContenderResult("sgd", False, sgd))
    result = TaskResult("toy", "toy", 10, contenders + (ContenderResult("lstm", True, lstm),), 1.0)
    [from_object] = score_suite([result])
    assert from_object == score_task(json.loads(json.dumps(results_json([result])))[0])
    assert from_object.train.baseline == best_baseline(result).label == "adam"
    assert from_object.train.ratio == pytest.approx(
        loss_ratio(lstm.final_losses[0], adam.final_losses[0])
    )
    assert from_object.test.baseline == "sgd" and from_object.test.ratio == pytest.approx(1.3 / 1.0)
    mean_adam = [2.0, 1.1, 0.6]  # strictly decreasing: np.interp on the reversed curve
    needed = np.interp(0.9, mean_adam[::-1], [10, 5, 0])
    assert from_object.speedup.steps == pytest.approx(needed / 10)
    assert from_object.speedup.wallclock == pytest.approx(needed * 0.002 / (10 * 0.004))


# --- aggregate and markdown rows -----------------------------------------------------------


def test_rows_of_a_suite_of_three_tasks():
    scores = score_suite([QUAD, MLP, RNN])
    assert task_rows(scores) == [
        ["quad", "3.00x", "loses", "0.50x", "wins", "0.50x", "0.25x"],
        ["mlp", "0.73x", "inconclusive", "1.00x", "inconclusive", "≥1.00x", "≥0.50x"],
        ["rnn", "∞", "diverges", "—", "—", "0 (diverged)", "0 (diverged)"],
    ]
    rows = {r[0]: r for r in aggregate_rows(aggregate(scores, resamples=2000, seed=0))}
    # Under four tasks the IQM is the mean. Each bound is a resample of one task only
    # (probability 1/27 of three tasks, 1/4 of two: more than the 2.5% tails).
    assert rows["train ratio"][1:5] == ["lower is better", "∞ [0.73, ∞]", "∞", "3 of 3"]
    assert rows["train ratio"][5] == "0 wins, 0 equivalent, 1 inconclusive, 1 loses, 1 diverges"
    assert rows["test ratio"][2:5] == ["0.75 [0.50, 1.00]", f"{math.sqrt(0.5):.2f}", "2 of 3"]
    assert rows["test ratio"][5] == "1 wins, 0 equivalent, 1 inconclusive, 0 loses, 0 diverges"
    assert rows["speedup"][1:6] == [
        "higher is better",
        "0.50 [0.00, 1.00]",
        "0.00",
        "3 of 3",
        "1 censored, 1 diverged",
    ]
    assert rows["wallclock speedup"][2] == "0.25 [0.00, 0.50]"
