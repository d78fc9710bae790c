"""An ablation's numbers: per-arm statistics, the tuned baselines, paired comparisons.

Two sources of spread are kept apart: meta-seeds (K meta-training runs of an arm, the
unit of every ± and of every comparison) and evaluation seeds (E held-out task seeds,
the same for every optimizer; their standard error is shown in its own column).
Comparisons between arms are paired by meta-seed (seed k of every arm starts from
the same LSTM weights and task instances), with the one verdict rule of every report
(`trainers.evaluation.verdicts`: a paired t interval on K − 1 degrees of freedom;
"wins" means the whole interval of (a − b) lies below zero).
`trainers.reporting.ablation_report` renders these numbers as report.md and plots.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from trainers.evaluation.evaluate import TaskResult
from trainers.evaluation.statistics import censored_median, mean_and_se, steps_to_target
from trainers.evaluation.verdicts import interval_verdict, paired_interval

if TYPE_CHECKING:
    from trainers.core.trajectories import Trajectories

VALIDATION_KEY = "validation_final_loss"


@dataclasses.dataclass(frozen=True)
class ArmEvaluation:
    """One arm's K meta-trained optimizers: training record and held-out runs.

    Attributes:
      label, supervision, teacher: what the arm is.
      curve_steps: meta-steps of the validations, [P].
      validation: validation metric -> [K, P].
      step_cost: inner steps per meta-step (imitation unrolls included).
      seconds: meta-training wall time.
      runs: the K optimizers on the E held-out seeds, leading axes [K, E].
    """

    label: str
    supervision: str
    teacher: str
    curve_steps: np.ndarray
    validation: Mapping[str, np.ndarray]
    step_cost: int
    seconds: float
    runs: Trajectories

    @property
    def final_losses(self) -> np.ndarray:
        """Final training loss, [K, E]."""
        return self.runs.final_losses

    def metric(self, name: str) -> np.ndarray | None:
        """'final_loss' or a task metric ('test_loss'), [K, E]; None when the task has none."""
        return self.final_losses if name == "final_loss" else self.runs.metrics.get(name)


def common_level(arms: Sequence[ArmEvaluation], key: str = VALIDATION_KEY) -> float:
    """The highest of the arms' best mean validation values: a level every arm reaches."""
    return max(float(np.nanmin(np.nanmean(arm.validation[key], axis=0))) for arm in arms)


def inner_steps_to_level(
    arm: ArmEvaluation, level: float, key: str = VALIDATION_KEY
) -> tuple[int, int]:
    """(meta-steps, inner steps) at which the arm's mean validation curve first is <= level; -1 if never."""
    hits = np.flatnonzero(np.nanmean(arm.validation[key], axis=0) <= level)
    if not hits.size:
        return -1, -1
    step = int(arm.curve_steps[hits[0]])
    return step, step * arm.step_cost


def _baseline(tuned: TaskResult, name: str):
    return next((r for r in tuned.results if r.label == name), None)


def arm_row(arm: ArmEvaluation, reference: Any | None, level: float) -> dict[str, Any]:
    """An arm's numbers: per-meta-seed means over evaluation seeds, then mean ± SE over meta-seeds."""
    row: dict[str, Any] = {
        "arm": arm.label,
        "supervision": arm.supervision,
        "teacher": arm.teacher,
        "inner_steps_per_meta_step": arm.step_cost,
        "meta_steps": int(arm.curve_steps[-1]),
        "seconds": arm.seconds,
    }
    for name in ("final_loss", "test_loss"):
        values = arm.metric(name)
        if values is None:
            continue
        row[name] = mean_and_se(np.mean(values, axis=1))
        row[f"{name}_eval_se"] = float(np.mean([mean_and_se(v)[1] for v in values]))
        row[f"{name}_per_meta_seed"] = [
            float(v) for v in np.mean(values, axis=1)
        ]  # pairs runs by meta-seed
    if "test_loss" in row:
        row["gap"] = mean_and_se(np.mean(arm.metric("test_loss") - arm.final_losses, axis=1))
    if reference is not None:
        adam_final = float(np.mean(reference.final_losses))
        row["ratio_to_adam"] = mean_and_se(np.mean(arm.final_losses, axis=1) / adam_final)
        hits = steps_to_target(
            arm.runs.steps, arm.runs.curves.reshape(-1, arm.runs.curves.shape[-1]), adam_final
        )
        row["median_steps_to_adam"] = censored_median(hits)
        row["reached_adam"] = f"{int(np.sum(np.isfinite(hits)))}/{hits.size}"
    row["meta_steps_to_level"], row["inner_steps_to_level"] = inner_steps_to_level(arm, level)
    return row


def baseline_rows(tuned: TaskResult) -> list[dict[str, Any]]:
    """The tuned baselines: final and test loss (mean ± SE over evaluation seeds), chosen values."""
    rows = []
    adam = _baseline(tuned, "adam")
    adam_final = float(np.mean(adam.final_losses)) if adam else math.nan
    for result in tuned.results:
        row = {
            "baseline": result.label,
            "final_loss": mean_and_se(result.final_losses),
            "chosen": result.chosen,
        }
        if "test_loss" in result.runs.metrics:
            row["test_loss"] = mean_and_se(result.runs.metrics["test_loss"][0])
        row["median_steps_to_adam"] = (
            censored_median(steps_to_target(result.runs.steps, result.runs.curves[0], adam_final))
            if adam
            else math.nan
        )
        rows.append(row)
    return rows


def comparisons(arms: Sequence[ArmEvaluation], pairs: Sequence[str]) -> list[dict[str, Any]]:
    """Paired comparisons "a:b" (arms present only) on final training and test loss.

    Every extra-teacher arm is also compared with the same arm under the main teacher.
    """
    by_label = {arm.label: arm for arm in arms}
    wanted = [tuple(pair.split(":")) for pair in pairs]
    wanted += [(arm.label, arm.supervision) for arm in arms if arm.label != arm.supervision]
    rows = []
    for a, b in wanted:
        if a not in by_label or b not in by_label:
            continue
        for name in ("final_loss", "test_loss"):
            values_a, values_b = by_label[a].metric(name), by_label[b].metric(name)
            if values_a is None or values_b is None:
                continue
            interval = paired_interval(np.mean(values_a, axis=1), np.mean(values_b, axis=1))
            rows.append(
                {
                    "a": a,
                    "b": b,
                    "metric": name,
                    "difference": interval.mean,
                    "lower": interval.lower,
                    "upper": interval.upper,
                    "dof": interval.dof,
                    "relative": interval.mean / float(np.mean(values_b)),
                    "verdict": interval_verdict(interval),
                }
            )
    return rows
