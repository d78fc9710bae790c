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
from trainers.evaluation.hypothesis_tests import (
    ALPHA,
    comparison_verdict,
    detectable_effect,
    holm,
    paired_test,
)
from trainers.evaluation.statistics import censored_median, mean_and_se, steps_to_target
from trainers.evaluation.verdicts import paired_interval

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


FAMILIES = ("primary", "secondary", "control")


def _wanted_pairs(
    arms: Sequence[ArmEvaluation],
    pairs: Sequence[str],
    primary: Sequence[str],
    negative_control: str | None,
) -> list[tuple[str, str, str]]:
    """(a, b, family) of every comparison, the primary ones first, each pair once."""
    wanted = [(*pair.split(":"), "primary") for pair in primary]
    wanted += [(*pair.split(":"), "secondary") for pair in pairs]
    wanted += [
        (arm.label, arm.supervision, "secondary") for arm in arms if arm.label != arm.supervision
    ]
    if negative_control is not None:
        wanted.append((*negative_control.split(":"), "control"))
    families: dict[tuple[str, str], str] = {}
    for a, b, family in wanted:  # a pair declared twice stays in its first family
        families.setdefault((a, b), family)
    return [(a, b, family) for (a, b), family in families.items()]


def comparisons(
    arms: Sequence[ArmEvaluation],
    pairs: Sequence[str],
    *,
    primary: Sequence[str] = (),
    negative_control: str | None = None,
    margin: float = 0.0,
    alpha: float = ALPHA,
) -> list[dict[str, Any]]:
    """Paired comparisons "a:b" (arms present only) on final training and test loss.

    Each comparison is a paired t-test over meta-seeds, Holm-adjusted within its family
    and metric. The families: the declared `primary` pairs; every other pair (`pairs`,
    and each extra-teacher arm or variant against its base arm); and the
    `negative_control` pair alone (two arms that differ in nothing that should matter:
    its spread is the noise floor). With `margin` > 0, two one-sided tests against
    ± margin x (b's mean) can make a verdict "equivalent". `detectable` is the smallest
    difference the comparison finds with 80% power at alpha / (its family's size), a
    Bonferroni bound on Holm's first step.
    """
    by_label = {arm.label: arm for arm in arms}
    rows = []
    for a, b, family in _wanted_pairs(arms, pairs, primary, negative_control):
        if a not in by_label or b not in by_label:
            continue
        for name in ("final_loss", "test_loss"):
            values_a, values_b = by_label[a].metric(name), by_label[b].metric(name)
            if values_a is None or values_b is None:
                continue
            per_seed_a, per_seed_b = np.mean(values_a, axis=1), np.mean(values_b, axis=1)
            reference = float(np.mean(values_b))
            test = paired_test(per_seed_a, per_seed_b, margin * abs(reference) if margin else None)
            interval = paired_interval(per_seed_a, per_seed_b)
            rows.append(
                {
                    "a": a,
                    "b": b,
                    "metric": name,
                    "family": family,
                    "difference": interval.mean,
                    "lower": interval.lower,
                    "upper": interval.upper,
                    "dof": interval.dof,
                    "relative": interval.mean / reference,
                    "sd": test.sd,
                    "p": test.p,
                    "margin": test.margin,
                    "p_equivalence": test.p_equivalence,
                    "a_diverges": not np.all(np.isfinite(per_seed_a)),
                    "b_diverges": not np.all(np.isfinite(per_seed_b)),
                }
            )
    for family in FAMILIES:
        for name in ("final_loss", "test_loss"):
            group = [r for r in rows if r["family"] == family and r["metric"] == name]
            adjusted = holm([r["p"] for r in group])
            adjusted_equivalence = holm([r["p_equivalence"] for r in group])
            for row, p, p_eq in zip(group, adjusted, adjusted_equivalence):
                row["family_size"] = len(group)
                row["p_adjusted"], row["p_equivalence_adjusted"] = float(p), float(p_eq)
                row["detectable"] = detectable_effect(row["sd"], row["dof"] + 1, alpha / len(group))
                a_diverges, b_diverges = row.pop("a_diverges"), row.pop("b_diverges")
                row["verdict"] = comparison_verdict(
                    a_diverges, b_diverges, row["difference"], p, p_eq
                )
    return rows
