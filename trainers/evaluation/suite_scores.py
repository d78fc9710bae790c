"""One learned optimizer over a suite of tasks: per-task scores and their aggregate.

Per task, against tuned baselines on the same held-out seeds: mean final training loss over
the best baseline's (`statistics.best_baseline`), mean test loss over the baseline lowest on
it, a `verdicts.paired_verdict` per seed on each, and the speed-up over tuned Adam in steps
and in seconds. Over tasks: the interquartile mean (IQM) with a percentile bootstrap interval,
the geometric mean, the verdict counts. Ratios: lower is better; speed-ups: higher.

References:
  Agarwal et al. "Deep Reinforcement Learning at the Edge of the Statistical Precipice",
  NeurIPS 2021 (rliable): IQM = `scipy.stats.trim_mean(scores, proportiontocut=0.25)`
  (rliable/metrics.py `aggregate_iqm`); percentile bootstrap intervals (rliable/library.py
  `get_interval_estimates`, method="percentile"), over tasks here (one score a task).
  Metz et al. "VeLO", 2022; learned_optimization/baselines/normalizers.py
  (`_speedup_over_adam_build`, `_make_func`): Adam's mean curve made monotone by a running
  minimum, a loss mapped to Adam's steps by linear interpolation (clamped to Adam's whole run
  below its best loss; 0 for a non-finite loss), divided by the learned run's steps
  (continuous_eval/run_eval_chief.py, `metrics_fn_for_speedup_normalized`). Adam's curve is the
  task's `AdamReference` where the evaluation ran one (the envelope over its learning-rate grid,
  run several times the task's steps, as there), else the tuned Adam run of the task's own
  length (a speed-up then cannot exceed 1 but as a censored bound); it is not EMA-smoothed (it
  is the loss on a fixed training subset). Celo (Moudgil et al. 2025) reports this speed-up and
  rliable's IQM; its repository has no code of its own for either.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy import stats

from trainers.evaluation.statistics import loss_ratio, tuning_score
from trainers.evaluation.verdicts import VERDICTS, paired_verdict

SCORES = dict(train_ratio="lower", test_ratio="lower", speedup="higher", wallclock_speedup="higher")


@dataclasses.dataclass(frozen=True)
class Speedup:
    """Steps (and seconds) tuned Adam needs for the learned optimizer's final loss, over its own."""

    steps: float  # Adam's steps / learned steps: a lower bound when censored, 0 when diverged
    wallclock: float  # Adam's steps x s/step over the learned optimizer's (nan: unmeasured)
    adam_steps: float  # steps Adam needs (its whole run when censored)
    censored: bool = False  # Adam's curve never reached the loss within its run
    diverged: bool = False  # a learned run's final loss is not finite


class Comparison(NamedTuple):
    """Against the baseline with the lowest mean of one per-seed loss (None/nan: no baseline)."""

    baseline: str | None
    ratio: float  # mean loss of the learned optimizer over the baseline's
    verdict: str | None  # `verdicts.paired_verdict` for the learned optimizer


@dataclasses.dataclass(frozen=True)
class TaskScore:
    """One learned optimizer on one task: final training loss, test loss, speed-up over Adam."""

    task: str
    optimizer: str
    train: Comparison
    test: Comparison
    speedup: Speedup

    def score(self, name: str) -> float:
        """The value of one of `SCORES`."""
        return {
            "train_ratio": self.train.ratio,
            "test_ratio": self.test.ratio,
            "speedup": self.speedup.steps,
            "wallclock_speedup": self.speedup.wallclock,
        }[name]


@dataclasses.dataclass(frozen=True)
class Aggregate:
    """One score over the tasks that define it (`tasks` of `total`), and the suite's counts."""

    score: str
    better: str  # "lower" or "higher"
    iqm: float
    low: float  # the IQM's bootstrap interval
    high: float
    geometric_mean: float
    tasks: int
    total: int
    counts: dict[str, int]  # ratios: tasks per verdict; speed-ups: censored and diverged


def adam_steps_to_reach(steps, mean_curve, loss: float) -> tuple[float, bool]:
    """The steps Adam's mean curve needs to reach `loss`, and whether it does.

    The curve's running minimum (the best loss so far) is interpolated linearly between the
    recorded steps at its first crossing of `loss`; when it never gets there the answer is
    the whole run (`steps[-1]`, a lower bound). Non-finite points never reach anything.
    """
    steps, curve = np.asarray(steps, np.float64), np.asarray(mean_curve, np.float64)
    best = np.minimum.accumulate(np.where(np.isfinite(curve), curve, np.inf))
    reached = best <= loss
    if not reached.any():
        return float(steps[-1]), False
    i = int(np.argmax(reached))
    if i == 0 or not np.isfinite(best[i - 1]):
        return float(steps[i]), True
    fraction = (best[i - 1] - loss) / (best[i - 1] - best[i])
    return float(steps[i - 1] + fraction * (steps[i] - steps[i - 1])), True


def speedup_over_adam(
    adam_steps,
    adam_mean_curve,
    learned_final_losses,
    learned_steps: int,
    adam_step_seconds: float = math.nan,
    learned_step_seconds: float = math.nan,
) -> Speedup:
    """The learned optimizer's speed-up over Adam, in steps and in wall-clock time.

    Args:
      adam_steps, adam_mean_curve: Adam's recorded steps [P] and mean training loss there [P].
      learned_final_losses: the learned optimizer's final training loss per seed [K] (Adam must
        reach their mean) after `learned_steps` steps.
      adam_step_seconds, learned_step_seconds: wall time per step of each (nan: unmeasured).
    """
    final = np.asarray(learned_final_losses, np.float64)
    if not np.all(np.isfinite(final)):
        return Speedup(0.0, 0.0, math.nan, diverged=True)
    needed, reached = adam_steps_to_reach(adam_steps, adam_mean_curve, float(np.mean(final)))
    wallclock = needed * adam_step_seconds / (learned_steps * learned_step_seconds)
    return Speedup(needed / learned_steps, wallclock, needed, censored=not reached)


def _compare(learned: dict, baselines: list[dict], key: str, margin: float | None) -> Comparison:
    """The learned optimizer's row against the best baseline row on one per-seed loss."""
    baselines = [r for r in baselines if key in r]
    if not baselines or key not in learned:
        return Comparison(None, math.nan, None)
    best = min(baselines, key=lambda r: tuning_score(np.asarray([r[key]], np.float64))[0])
    a, b = np.asarray(learned[key], np.float64), np.asarray(best[key], np.float64)
    absolute = None if margin is None else margin * abs(float(np.mean(b)))
    return Comparison(best["optimizer"], loss_ratio(a, b), paired_verdict(a, b, absolute)[1])


def score_task(
    task: Mapping[str, Any], learned: str | None = None, adam: str = "adam", margin=None
) -> TaskScore:
    """The scores of one learned optimizer on one task of a results.json.

    Args:
      task: one entry of `evaluation_report.results_json` (a finished run's results.json).
      learned: the learned optimizer's label; None: the task's only learned optimizer.
      adam: the label of the baseline speed-ups are measured against.
      margin: the verdicts' equivalence margin, a fraction of the baseline's mean (None: none).

    Raises:
      ValueError: no such learned optimizer, or several and `learned` is None.
    """
    rows = task["optimizers"]
    candidates = [r for r in rows if r["learned"] and learned in (None, r["optimizer"])]
    if len(candidates) != 1:
        names = [r["optimizer"] for r in rows if r["learned"]]
        raise ValueError(f"{task['task']}: learned optimizer {learned!r} among {names}: pick one")
    row, baselines = candidates[0], [r for r in rows if not r["learned"]]
    adam_row = next((r for r in baselines if r["optimizer"] == adam), None)
    speedup = Speedup(math.nan, math.nan, math.nan)  # no Adam, or a results.json before curves
    if adam_row is not None and "mean_curve" in adam_row:
        seconds = float(adam_row["step_seconds"]), float(row["step_seconds"])
        final, steps = row["per_seed_final_loss"], int(task["steps"])
        curve = task.get("adam_reference", adam_row)  # the longer envelope run where there is one
        speedup = speedup_over_adam(
            curve["curve_steps"], curve["mean_curve"], final, steps, *seconds
        )
    train = _compare(row, baselines, "per_seed_final_loss", margin)
    test = _compare(row, baselines, "per_seed_test_loss", margin)
    return TaskScore(task["task"], row["optimizer"], train, test, speedup)


def score_suite(tasks: Sequence[Any], **options) -> list[TaskScore]:
    """`score_task(task, **options)` of every task: results.json entries or `TaskResult`s.

    A `TaskResult` is scored through `evaluation_report.results_json`, the one layout of both.
    """
    if any(not isinstance(t, Mapping) for t in tasks):
        # Here, so that scoring a results.json imports neither JAX nor matplotlib.
        from trainers.reporting.evaluation_report import results_json

        tasks = [t if isinstance(t, Mapping) else results_json([t])[0] for t in tasks]
    return [score_task(t, **options) for t in tasks]


def iqm(values) -> float:
    """Interquartile mean: the mean after dropping floor(n/4) values at each end (rliable).

    `scipy.stats.trim_mean(values, 0.25)`: whole values only, so under 4 values it is the mean.
    """
    values = np.asarray(values, np.float64)
    return float(stats.trim_mean(values, 0.25)) if values.size else math.nan


def bootstrap_interval(
    values, statistic=iqm, resamples: int = 2000, confidence: float = 0.95, rng=0
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` over resamples of `values` with replacement.

    The resample indices are `rng.integers(0, n, (resamples, n))`, `rng` a seed or a Generator
    (`np.random.default_rng`; a Generator advances). The bounds are the outward order statistics
    of the resampled statistics (numpy's "lower" and "higher" quantiles, no interpolation), so
    an infinite (diverged) score gives an infinite bound rather than nan.

    References:
      Efron and Tibshirani, An Introduction to the Bootstrap (1993), ch. 13; Agarwal et al. 2021.
    """
    values = np.asarray(values, np.float64)
    if not values.size:
        return math.nan, math.nan
    indices = np.random.default_rng(rng).integers(0, values.size, size=(resamples, values.size))
    resampled = np.asarray([statistic(values[i]) for i in indices])
    alpha = (1 - confidence) / 2
    low = np.quantile(resampled, alpha, method="lower")
    return float(low), float(np.quantile(resampled, 1 - alpha, method="higher"))


def geometric_mean(values) -> float:
    """exp(mean(log)): 0 if a value is 0 (a divergence's speed-up), inf if one is inf."""
    values = np.asarray(values, np.float64)
    with np.errstate(divide="ignore"):
        return float(np.exp(np.mean(np.log(values)))) if values.size else math.nan


def _counts(scores: Sequence[TaskScore], name: str) -> dict[str, int]:
    if name.endswith("ratio"):
        verdicts = [getattr(s, name.split("_")[0]).verdict for s in scores]
        return {v: verdicts.count(v) for v in VERDICTS}
    return {k: sum(getattr(s.speedup, k) for s in scores) for k in ("censored", "diverged")}


def aggregate(
    scores: Sequence[TaskScore], resamples=2000, confidence=0.95, seed=0
) -> list[Aggregate]:
    """Each of `SCORES` over the tasks where it is not nan (inf, a divergence, counts as worst).

    Every score's bootstrap starts from `np.random.default_rng(seed)`: deterministic, and
    independent of which other scores are aggregated.
    """
    out = []
    for name, better in SCORES.items():
        values = np.asarray([s.score(name) for s in scores], np.float64)
        values = values[~np.isnan(values)]
        interval = bootstrap_interval(values, iqm, resamples, confidence, seed)
        summary = (iqm(values), *interval, geometric_mean(values), values.size, len(scores))
        out.append(Aggregate(name, better, *summary, _counts(scores, name)))
    return out
