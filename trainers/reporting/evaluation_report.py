"""What a researcher reads after `meta-opt evaluate`: tables, loss curves, report.md, W&B.

Every number in a table is a mean ± standard error over the held-out seeds. The
learned-versus-baseline verdicts are the one rule of `trainers.evaluation.verdicts`
(the paired t interval over the same held-out seeds).
"""

from __future__ import annotations

import math
import pathlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from common.atomic import write_text
from trainers.evaluation.evaluate import TaskResult
from trainers.evaluation.statistics import best_baseline, loss_ratio, mean_and_se, summarize
from trainers.evaluation.verdicts import VERDICTS, paired_verdict, rule_sentence
from trainers.reporting.plots import plot_loss_curves
from trainers.reporting.tables import format_mean_se, markdown_table, text_table


def slug(label: str) -> str:
    """A file- and W&B-key-safe name for a task label."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "task"


def _hparams(chosen: dict[str, float], at_edge: Sequence[str]) -> str:
    names = {"learning_rate": "lr", "damping": "damping"}
    parts = [
        f"{names.get(k, k)}={v:.3g}" + (" (grid edge)" if k in at_edge else "")
        for k, v in chosen.items()
    ]
    return ", ".join(parts) or "—"


TABLE_COLUMNS = (
    "optimizer",
    "final train loss",
    "test loss",
    "test accuracy",
    "steps to target",
    "median steps (misses as slowest)",
    "tuned on separate seeds",
    "ms per step (seeds vmapped)",
    "time to target (median)",
)


def _milliseconds(seconds: float) -> str:
    return f"{1000 * seconds:.3g} ms" if math.isfinite(seconds) else "not measured"


def table_rows(task: TaskResult) -> list[list[str]]:
    """The rows of a task's table, as strings in `TABLE_COLUMNS` order."""
    rows = []
    for row in summarize(task):
        final = format_mean_se(row["final_loss"])
        if row["diverged"]:
            final += f" ({row['diverged']}/{row['seeds']} diverged)"
        steps = (
            f"{format_mean_se(row['steps_to_target'])} ({row['reached_target']}/{row['seeds']})"
            if row["reached_target"]
            else f"not reached (0/{row['seeds']})"
        )
        median = row["median_steps_to_target"]
        rows.append(
            [
                row["optimizer"],
                final,
                format_mean_se(row.get("test_loss", (math.nan, math.nan))),
                format_mean_se(row.get("test_accuracy", (math.nan, math.nan))),
                steps,
                f"{median:.0f}" if math.isfinite(median) else "never (half or more miss)",
                "not tuned (learned)"
                if row["learned"]
                else _hparams(row["chosen"], row["at_edge"]),
                _milliseconds(row["step_seconds"]),
                _milliseconds(row["seconds_to_target"]) if math.isfinite(median) else "never",
            ]
        )
    return rows


def plot_curves(task: TaskResult, path: str | pathlib.Path):
    """Writes a PNG of the training loss against inner steps: mean over seeds with a ±1 SE band."""
    seeds = task.results[0].final_losses.size
    return plot_loss_curves(
        {r.label: (r.runs.steps, r.runs.curves[0], r.learned) for r in task.results},
        path,
        f"{task.label}: mean ± SE over {seeds} held-out seeds",
        task.target_loss,
    )


COMPARISON_COLUMNS = (
    "task",
    "steps",
    "learned optimizer",
    "final loss",
    "best tuned baseline",
    "its final loss",
    "ratio",
    "verdict",
)


def comparison_rows(tasks: Sequence[TaskResult]) -> list[list[str]]:
    """Per task and learned optimizer: its final loss against the best tuned baseline's."""
    rows = []
    for task in tasks:
        best = best_baseline(task)
        for result in (r for r in task.results if r.learned):
            if best is None:
                continue
            _, verdict = paired_verdict(result.final_losses, best.final_losses)
            ratio = loss_ratio(result.final_losses, best.final_losses)
            rows.append(
                [
                    task.label,
                    str(task.num_steps),
                    result.label,
                    format_mean_se(mean_and_se(result.final_losses)),
                    best.label,
                    format_mean_se(mean_and_se(best.final_losses)),
                    f"{ratio:.2f}x"
                    if math.isfinite(ratio)
                    else ("—" if math.isnan(ratio) else "∞"),
                    verdict,
                ]
            )
    return rows


def verdict_summary(comparison: Sequence[Sequence[str]]) -> str:
    """One sentence per verdict naming the tasks (wins, equivalent, inconclusive, loses, diverges)."""
    by_verdict: dict[str, list[str]] = {}
    for row in comparison:
        by_verdict.setdefault(row[-1], []).append(f"{row[2]} on {row[0]}")
    return " ".join(
        f"**{verdict.capitalize()}:** {'; '.join(by_verdict[verdict])}."
        for verdict in VERDICTS
        if verdict in by_verdict
    )


def write_report(
    tasks: Sequence[TaskResult],
    folder: str | pathlib.Path,
    *,
    title: str,
    intro: str = "",
    extra_sections: Sequence[str] = (),
) -> dict[str, pathlib.Path]:
    """Writes `report.md` and one `curves_<task>.png` per task into `folder`.

    Returns:
      `{"report": report.md, <task label>: its PNG, ...}`.
    """
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, pathlib.Path] = {}
    lines = [f"# {title}", ""]
    if intro:
        lines += [intro, ""]
    comparison = comparison_rows(tasks)
    if comparison:
        lines += [
            "## Learned optimizers against the best tuned baseline",
            "",
            "Ratio: mean final training loss of the learned optimizer over the best baseline's. "
            + rule_sentence(),
            "",
            markdown_table(COMPARISON_COLUMNS, comparison),
            "",
            verdict_summary(comparison),
            "",
        ]
    for task in tasks:
        png = folder / f"curves_{slug(task.label)}.png"
        plot_curves(task, png)
        written[task.label] = png
        seeds = task.results[0].final_losses.size
        lines += [
            f"## {task.label}",
            "",
            f"{task.num_steps} inner steps, {seeds} held-out seeds; target loss "
            f"{task.target_loss:.4g} (steps to target: first recorded step at or below it, "
            "median over all seeds with the misses counted as slowest, and "
            "mean over the seeds that reached it). Wall clock on this machine: the held-out "
            f"run's time over its steps (all {seeds} seeds vmapped, gradient and the recorded "
            "evaluations included, compilation excluded), and the median steps to target "
            "times that.",
            "",
            markdown_table(TABLE_COLUMNS, table_rows(task)),
            "",
            f"![{task.label}]({png.name})",
            "",
        ]
    lines += list(extra_sections)
    report = folder / "report.md"
    write_text(report, "\n".join(lines) + "\n")
    written["report"] = report
    return written


def results_json(tasks: Sequence[TaskResult]) -> list[dict[str, Any]]:
    """The report's numbers as plain data (results.json), for scripts and RESULTS.md.

    Each optimizer's row also holds its per-seed final training loss (and test loss where
    the task has one), in held-out seed order, so any two optimizers can be compared
    seed by seed afterwards (`trainers.evaluation.verdicts`, `hypothesis_tests`), and its
    training loss at the recorded steps averaged over the seeds (`curve_steps`, `mean_curve`),
    for speed-ups over Adam (`trainers.evaluation.suite_scores`); a task with an
    `AdamReference` holds its envelope curve as "adam_reference".
    """
    out = []
    for task in tasks:
        rows = []
        for row, result in zip(summarize(task), task.results):
            row = {k: (list(v) if isinstance(v, tuple) else v) for k, v in row.items()}
            row["per_seed_final_loss"] = [float(v) for v in result.final_losses]
            if "test_loss" in result.runs.metrics:
                row["per_seed_test_loss"] = [float(v) for v in result.runs.metrics["test_loss"][0]]
            row["curve_steps"] = [int(s) for s in result.runs.steps]
            row["mean_curve"] = [float(v) for v in np.mean(result.runs.curves[0], axis=0)]
            rows.append(row)
        entry = {
            "task": task.label,
            "family": task.task,
            "steps": task.num_steps,
            "target_loss": task.target_loss,
            "optimizers": rows,
        }
        if task.adam_reference is not None:  # Adam's grid run longer, for speed-ups
            entry["adam_reference"] = {
                "curve_steps": [int(s) for s in task.adam_reference.steps],
                "mean_curve": [float(v) for v in task.adam_reference.mean_curve],
            }
        out.append(entry)
    return out


def log_to_wandb(logger, tasks: Sequence[TaskResult], images: dict[str, pathlib.Path]) -> None:
    """Logs every task's table and curve plot, and summary scalars `<task>/<optimizer>/<metric>`."""
    summary: dict[str, float] = {}
    for task in tasks:
        key = slug(task.label)
        logger.log_table(f"{key}/table", TABLE_COLUMNS, table_rows(task))
        if task.label in images:
            logger.log_image(f"{key}/curves", images[task.label])
        for row in summarize(task):
            prefix = f"{key}/{slug(row['optimizer'])}"
            summary[f"{prefix}/final_loss_mean"] = row["final_loss"][0]
            summary[f"{prefix}/final_loss_se"] = row["final_loss"][1]
            if "test_accuracy" in row:
                summary[f"{prefix}/test_accuracy_mean"] = row["test_accuracy"][0]
    comparison = comparison_rows(tasks)
    if comparison:
        logger.log_table("comparison", COMPARISON_COLUMNS, comparison)
    logger.log_summary(summary)


def format_tables(tasks: Sequence[TaskResult]) -> str:
    """Each task's table as plain text, for the terminal."""
    blocks = [
        f"{task.label} ({task.num_steps} steps, target loss {task.target_loss:.4g})\n"
        + text_table(TABLE_COLUMNS, table_rows(task))
        for task in tasks
    ]
    return "\n\n".join(blocks)


def describe_best(task: TaskResult) -> str | None:
    """One line naming the best baseline and its chosen hyperparameters."""
    best = best_baseline(task)
    return (
        None
        if best is None
        else f"best baseline on {task.label}: {best.label} ({_hparams(best.chosen, [])})"
    )
