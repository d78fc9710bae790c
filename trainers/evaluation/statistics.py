"""Summary statistics of evaluation runs: means, standard errors, steps to a target.

Every number is a mean ± standard error over the held-out seeds. Verdicts, from the
paired difference per seed (all optimizers run on the same seeds), are the one rule of
`trainers.evaluation.verdicts`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from trainers.evaluation.evaluate import ContenderResult, TaskResult


def tuning_score(final_losses: np.ndarray) -> np.ndarray:
    """Mean over seeds (last axis) of final losses; inf where any seed is not finite."""
    finite = np.all(np.isfinite(final_losses), axis=-1)
    return np.where(
        finite, np.mean(np.where(np.isfinite(final_losses), final_losses, 0.0), axis=-1), np.inf
    )


def mean_and_se(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard error (sample std / sqrt(n)) of a 1-D array; SE is nan for n < 2."""
    values = np.asarray(values, np.float64)
    se = float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else math.nan
    return float(np.mean(values)), se


def steps_to_target(steps: np.ndarray, curves: np.ndarray, target: float) -> np.ndarray:
    """Per run, the first recorded step whose training loss is <= target; nan if never. curves [K, P]."""
    reached = curves <= target
    first = np.argmax(reached, axis=-1)
    return np.where(reached.any(axis=-1), steps[first].astype(np.float64), np.nan)


def censored_median(hits: np.ndarray) -> float:
    """Median steps-to-target with the runs that never reached it counted as slowest (inf if half miss).

    Unlike the mean over the runs that did reach it, a method that reaches the target
    rarely cannot look fast.
    """
    return float(np.median(np.where(np.isfinite(hits), hits, np.inf)))


def summarize(task: TaskResult) -> list[dict[str, Any]]:
    """One row per contender: final loss, test metrics, steps to target (mean and SE over the runs
    that reach it; censored median over all), wall-clock cost and chosen values.

    `step_seconds` is the held-out call's wall time over its steps: one step of all seeds at
    once (vmapped, gradient and the recorded evaluations included, compilation excluded), on
    the machine that ran it. `seconds_to_target` is the censored median steps to target times
    that: a learned optimizer that needs fewer steps but costs more per step can lose on it.
    """
    rows = []
    for result in task.results:
        final = result.final_losses
        finite = np.isfinite(final)
        row: dict[str, Any] = {
            "optimizer": result.label,
            "learned": result.learned,
            "diverged": int(np.sum(~finite)),
            "seeds": int(final.size),
        }
        row["final_loss"] = mean_and_se(final)
        for name in ("test_loss", "test_accuracy"):
            if name in result.runs.metrics:
                row[name] = mean_and_se(result.runs.metrics[name][0])
        hits = steps_to_target(result.runs.steps, result.runs.curves[0], task.target_loss)
        row["reached_target"] = int(np.sum(np.isfinite(hits)))
        row["median_steps_to_target"] = censored_median(hits)
        row["steps_to_target"] = (
            mean_and_se(hits[np.isfinite(hits)])
            if np.isfinite(hits).any()
            else (math.nan, math.nan)
        )
        row["step_seconds"] = result.runs.seconds / task.num_steps
        row["seconds_to_target"] = row["median_steps_to_target"] * row["step_seconds"]
        row["chosen"] = result.chosen
        row["at_edge"] = result.tuning.at_edge() if result.tuning else []
        rows.append(row)
    return rows


def loss_ratio(learned, baseline) -> float:
    """Mean final loss of the learned optimizer over the baseline's: inf if the learned one
    diverged, nan if only the baseline did (no ratio to a diverged run)."""
    if not np.all(np.isfinite(learned)):
        return math.inf
    if not np.all(np.isfinite(baseline)):
        return math.nan
    return float(np.mean(learned) / np.mean(baseline))


def best_baseline(task: TaskResult) -> ContenderResult | None:
    """The baseline with the lowest mean final training loss (None without baselines)."""
    baselines = [r for r in task.results if not r.learned]
    if not baselines:
        return None
    return min(baselines, key=lambda r: tuning_score(r.final_losses[None])[0])
