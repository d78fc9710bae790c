"""The supervision ablation's report: per-arm statistics, paired comparisons, curves.

Two sources of spread are kept apart: meta-seeds (K meta-training runs of an arm, the
unit of every ± and of every comparison) and evaluation seeds (E held-out task seeds,
the same for every optimizer; their standard error is shown in its own column).
Comparisons between arms are paired by meta-seed (seed k of every arm starts from
the same LSTM weights and task instances), with a t-based 95% interval on K − 1
degrees of freedom; "wins" means the whole interval of (a − b) lies below zero.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from trainers.evaluation.evaluate import TaskResult
from trainers.evaluation.statistics import censored_median, mean_and_se, steps_to_target
from trainers.reporting.plots import finite_mean_se, plot_loss_curves, save_figure
from trainers.reporting.tables import format_mean_se, markdown_table

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


def paired_interval(
    a: np.ndarray, b: np.ndarray, confidence: float = 0.95
) -> tuple[float, float, float]:
    """(mean of a − b, lower, upper): t interval of the mean paired difference (1-D arrays)."""
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    mean, se = mean_and_se(diff)
    if not np.all(np.isfinite(diff)) or math.isnan(se):
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, len(diff) - 1)) * se
    return mean, mean - half, mean + half


def interval_verdict(lower: float, upper: float) -> str:
    """'wins' when the interval of (a − b) is below zero, 'loses' above, else 'ties' (lower is better)."""
    if math.isnan(lower) or math.isnan(upper):
        return "undecided"
    return "wins" if upper < 0 else "loses" if lower > 0 else "ties"


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
            mean, lower, upper = paired_interval(
                np.mean(values_a, axis=1), np.mean(values_b, axis=1)
            )
            rows.append(
                {
                    "a": a,
                    "b": b,
                    "metric": name,
                    "difference": mean,
                    "lower": lower,
                    "upper": upper,
                    "relative": mean / float(np.mean(values_b)),
                    "verdict": interval_verdict(lower, upper),
                }
            )
    return rows


def plot_validation_curves(arms: Sequence[ArmEvaluation], path: pathlib.Path, level: float):
    """Validation loss against inner steps spent: per arm the mean over meta-seeds with a ±1 SE band."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for arm in arms:
        mean, se = finite_mean_se(arm.validation[VALIDATION_KEY])
        x = arm.curve_steps * arm.step_cost
        (line,) = ax.plot(x, mean, "o-", markersize=3, label=arm.label)
        ax.fill_between(
            x, np.maximum(mean - se, 1e-12), mean + se, color=line.get_color(), alpha=0.2
        )
    ax.axhline(level, color="gray", linewidth=0.8, linestyle=":", label="common level")
    ax.set(
        yscale="log",
        xlabel="inner steps spent in meta-training (imitation unrolls included)",
        ylabel="validation loss after H steps",
        title="meta-training, mean ± SE over meta-seeds",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def _fmt(value, digits=3) -> str:
    if isinstance(value, tuple):
        return format_mean_se(value, digits)
    if isinstance(value, float):
        return (
            "—" if math.isnan(value) else ("never" if math.isinf(value) else f"{value:.{digits}g}")
        )
    return str(value)


ARM_COLUMNS = [
    "arm",
    "teacher",
    "inner steps / meta-step",
    "meta-steps",
    "final train loss",
    "eval-seed SE",
    "test loss",
    "eval-seed SE",
    "test − train",
    "ratio to tuned Adam",
    "median steps to Adam's loss (reached)",
    "inner steps to common level",
    "wall s",
]


def write_ablation_report(
    arms: Sequence[ArmEvaluation],
    tuned: TaskResult,
    folder: pathlib.Path,
    pairs: Sequence[str],
    *,
    logger=None,
    title: str = "Supervision ablation",
    skipped: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
) -> dict:
    """Writes report.md, ablation_validation.png and ablation_eval.png; logs tables to W&B.

    `skipped`: arms that could not be trained (label -> why), listed under the table;
    `notes`: further lines under it (the imitation pairs every arm shares).

    Returns:
      Every number of the report as plain data (for results.json).
    """
    folder = pathlib.Path(folder)
    level = common_level(arms)
    adam = _baseline(tuned, "adam")
    rows = [arm_row(arm, adam, level) for arm in arms]
    base = baseline_rows(tuned)
    compared = comparisons(arms, pairs)
    k, e = arms[0].final_losses.shape
    table = [
        [
            r["arm"],
            r["teacher"],
            r["inner_steps_per_meta_step"],
            r["meta_steps"],
            _fmt(r.get("final_loss")),
            _fmt(r.get("final_loss_eval_se"), 2),
            _fmt(r.get("test_loss", math.nan)),
            _fmt(r.get("test_loss_eval_se", math.nan), 2),
            _fmt(r.get("gap", math.nan)),
            _fmt(r.get("ratio_to_adam", math.nan)),
            f"{_fmt(r.get('median_steps_to_adam', math.nan))} ({r.get('reached_adam', '—')})",
            r["inner_steps_to_level"] if r["inner_steps_to_level"] >= 0 else "never",
            f"{r['seconds']:.0f}",
        ]
        for r in rows
    ]
    base_table = [
        [
            r["baseline"],
            _fmt(r["final_loss"]),
            _fmt(r.get("test_loss", math.nan)),
            _fmt(r["median_steps_to_adam"]),
            ", ".join(f"{n}={v:g}" for n, v in r["chosen"].items()),
        ]
        for r in base
    ]
    compare_table = [
        [
            f"{c['a']} vs {c['b']}",
            c["metric"].replace("_", " "),
            f"{c['difference']:+.4f}",
            f"[{c['lower']:+.4f}, {c['upper']:+.4f}]",
            f"{100 * c['relative']:+.1f}%",
            c["verdict"],
        ]
        for c in compared
    ]
    plot_validation_curves(arms, folder / "ablation_validation.png", level)
    curves = {
        arm.label: (arm.runs.steps, arm.runs.curves.reshape(-1, arm.runs.curves.shape[-1]), True)
        for arm in arms
    }
    curves.update({r.label: (r.runs.steps, r.runs.curves[0], False) for r in tuned.results})
    plot_loss_curves(
        curves,
        folder / "ablation_eval.png",
        f"{tuned.label}: held-out runs, "
        f"{tuned.num_steps} steps (learned: mean over {k} meta-seeds x {e} seeds)",
    )
    lines = [
        f"# {title}",
        "",
        f"{k} meta-seeds per arm, each evaluated on the same {e} held-out seeds for {tuned.num_steps} "
        "inner steps. Arm values: per meta-seed the mean over evaluation seeds, then mean ± SE over "
        "meta-seeds; the eval-seed SE columns are the mean over meta-seeds of the SE over evaluation "
        f"seeds. Common level: validation loss {level:.4g} (the highest of the arms' best mean values). "
        "Steps to Adam's loss: the median over all K x E runs of the first recorded step at or below "
        "tuned Adam's mean final loss, runs that never reach it counted as slowest ('never' if over half "
        "miss).",
        "",
        markdown_table(ARM_COLUMNS, table),
        "",
        *[f"Arm `{label}` not trained: {why}" for label, why in (skipped or {}).items()],
        "",
        *([*notes, ""] if notes else []),
        "Tuned baselines (mean ± SE over evaluation seeds):",
        "",
        markdown_table(
            ["baseline", "final train loss", "test loss", "median steps to Adam's loss", "chosen"],
            base_table,
        ),
        "",
        "## Paired comparisons",
        "",
        "a − b per meta-seed (the same seed of both arms), 95% t interval over meta-seeds; "
        "'wins' = a's loss is lower with the whole interval below zero.",
        "",
        markdown_table(
            ["comparison", "metric", "mean a − b", "95% interval", "relative to b", "verdict"],
            compare_table,
        ),
        "",
        "![validation](ablation_validation.png)",
        "",
        "![held-out runs](ablation_eval.png)",
        "",
    ]
    (folder / "report.md").write_text("\n".join(lines), encoding="utf-8")
    if logger is not None:
        logger.log_table("ablation/arms", ARM_COLUMNS, table)
        logger.log_table(
            "ablation/comparisons",
            ["comparison", "metric", "mean a − b", "95% interval", "relative to b", "verdict"],
            compare_table,
        )
        logger.log_image("ablation/validation", folder / "ablation_validation.png")
        logger.log_image("ablation/eval", folder / "ablation_eval.png")
        logger.log_summary({"common_level": level})
    return {
        "common_level": level,
        "meta_seeds": k,
        "skipped_arms": dict(skipped or {}),
        "eval_seeds": e,
        "arms": rows,
        "baselines": base,
        "comparisons": compared,
        "files": {
            "report": str(folder / "report.md"),
            "validation": str(folder / "ablation_validation.png"),
            "eval": str(folder / "ablation_eval.png"),
        },
    }
