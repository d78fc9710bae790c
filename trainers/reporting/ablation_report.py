"""The supervision ablation's report: report.md, the curves, and the W&B tables.

The numbers come from `trainers.reporting.ablation_statistics` (meta-seeds are the unit
of every ± and comparison; evaluation-seed spread has its own column); this module lays
them out as tables and plots. The statistics stay importable from here.
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np

from common.atomic import write_text
from trainers.evaluation.evaluate import TaskResult
from trainers.reporting.ablation_comparisons import (
    COMPARISON_COLUMNS,
    comparison_row,
    control_section,
    fmt,
    primary_section,
    statistics_sentence,
)
from trainers.reporting.ablation_statistics import (
    VALIDATION_KEY,
    ArmEvaluation,
    _baseline,
    arm_row,
    baseline_rows,
    common_level,
    comparisons,
    inner_steps_to_level,
)
from trainers.reporting.plots import finite_mean_se, plot_loss_curves, save_figure
from trainers.reporting.tables import markdown_table

__all__ = [
    "ARM_COLUMNS",
    "VALIDATION_KEY",
    "ArmEvaluation",
    "arm_row",
    "baseline_rows",
    "common_level",
    "comparisons",
    "inner_steps_to_level",
    "plot_validation_curves",
    "write_ablation_report",
]


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
    primary: Sequence[str] = (),
    negative_control: str | None = None,
    margin: float = 0.0,
) -> dict:
    """Writes report.md, ablation_validation.png and ablation_eval.png; logs tables to W&B.

    `skipped`: arms that could not be trained (label -> why), listed under the table;
    `notes`: further lines under it (the imitation pairs every arm shares, the seed stream);
    `primary`, `negative_control`, `margin`: as `ablation_statistics.comparisons`. The
    primary comparisons open the report; the negative control has its own section.

    Returns:
      Every number of the report as plain data (for results.json).
    """
    folder = pathlib.Path(folder)
    level = common_level(arms)
    adam = _baseline(tuned, "adam")
    rows = [arm_row(arm, adam, level) for arm in arms]
    base = baseline_rows(tuned)
    compared = comparisons(
        arms, pairs, primary=primary, negative_control=negative_control, margin=margin
    )
    k, e = arms[0].final_losses.shape
    table = [
        [
            r["arm"],
            r["teacher"],
            r["inner_steps_per_meta_step"],
            r["meta_steps"],
            fmt(r.get("final_loss")),
            fmt(r.get("final_loss_eval_se"), 2),
            fmt(r.get("test_loss", math.nan)),
            fmt(r.get("test_loss_eval_se", math.nan), 2),
            fmt(r.get("gap", math.nan)),
            fmt(r.get("ratio_to_adam", math.nan)),
            f"{fmt(r.get('median_steps_to_adam', math.nan))} ({r.get('reached_adam', '—')})",
            r["inner_steps_to_level"] if r["inner_steps_to_level"] >= 0 else "never",
            f"{r['seconds']:.0f}",
        ]
        for r in rows
    ]
    base_table = [
        [
            r["baseline"],
            fmt(r["final_loss"]),
            fmt(r.get("test_loss", math.nan)),
            fmt(r["median_steps_to_adam"]),
            ", ".join(f"{n}={v:g}" for n, v in r["chosen"].items()),
        ]
        for r in base
    ]
    tables = {
        family: [comparison_row(c) for c in compared if c["family"] == family]
        for family in ("primary", "secondary", "control")
    }
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
        *primary_section(tables["primary"], margin),
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
        "## Other paired comparisons" if primary else "## Paired comparisons",
        "",
        statistics_sentence(margin),
        "",
        markdown_table(COMPARISON_COLUMNS, tables["secondary"]),
        "",
        *control_section(tables["control"], negative_control),
        "![validation](ablation_validation.png)",
        "",
        "![held-out runs](ablation_eval.png)",
        "",
    ]
    write_text(folder / "report.md", "\n".join(lines))
    if logger is not None:
        logger.log_table("ablation/arms", ARM_COLUMNS, table)
        logger.log_table(
            "ablation/comparisons", COMPARISON_COLUMNS, [comparison_row(c) for c in compared]
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
        "primary": list(primary),
        "negative_control": negative_control,
        "equivalence_margin": margin,
        "files": {
            "report": str(folder / "report.md"),
            "validation": str(folder / "ablation_validation.png"),
            "eval": str(folder / "ablation_eval.png"),
        },
    }
