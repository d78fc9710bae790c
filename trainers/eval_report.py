"""What a researcher reads after `meta-opt evaluate`: tables, loss curves, report.md, W&B.

Every number in a table is a mean ± standard error over the held-out seeds. The
learned-versus-baseline verdicts use the paired difference per seed (all optimizers
run on the same seeds), so a "win" means the difference is more than two standard
errors of that paired difference.
"""

from __future__ import annotations

import math
import pathlib
import re
import sys
import warnings
from typing import Any, Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from geodesic_targets.report import save_figure  # noqa: E402
from trainers.evaluate import TaskResult, best_baseline, mean_and_se, summarize  # noqa: E402


def slug(label: str) -> str:
    """A file- and W&B-key-safe name for a task label."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "task"


def format_mean_se(value: tuple[float, float], digits: int = 3) -> str:
    """'0.0564 ± 0.0030' (significant digits of the mean); '—' for nan."""
    mean, se = value
    if not math.isfinite(mean):
        return "—" if math.isnan(mean) else "∞"
    scale = max(0, digits - 1 - int(math.floor(math.log10(abs(mean))))) if mean else digits
    if math.isnan(se):
        return f"{mean:.{scale}f}"
    return f"{mean:.{scale}f} ± {se:.{scale}f}"


def _hparams(chosen: dict[str, float], at_edge: Sequence[str]) -> str:
    names = {"learning_rate": "lr", "damping": "damping"}
    parts = [f"{names.get(k, k)}={v:.3g}" + (" (grid edge)" if k in at_edge else "") for k, v in chosen.items()]
    return ", ".join(parts) or "—"


TABLE_COLUMNS = ("optimizer", "final train loss", "test loss", "test accuracy", "steps to target",
                 "tuned on separate seeds")


def table_rows(task: TaskResult) -> list[list[str]]:
    """The rows of a task's table, as strings in `TABLE_COLUMNS` order."""
    rows = []
    for row in summarize(task):
        final = format_mean_se(row["final_loss"])
        if row["diverged"]:
            final += f" ({row['diverged']}/{row['seeds']} diverged)"
        steps = (f"{format_mean_se(row['steps_to_target'])} ({row['reached_target']}/{row['seeds']})"
                 if row["reached_target"] else f"not reached (0/{row['seeds']})")
        rows.append([row["optimizer"], final, format_mean_se(row.get("test_loss", (math.nan, math.nan))),
                     format_mean_se(row.get("test_accuracy", (math.nan, math.nan))), steps,
                     "not tuned (learned)" if row["learned"] else _hparams(row["chosen"], row["at_edge"])])
    return rows


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _finite_mean_se(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of [K, P] curves: mean and SE over the finite entries (diverged runs drop out)."""
    curves = np.where(np.isfinite(curves), np.asarray(curves, np.float64), np.nan)
    count = np.sum(np.isfinite(curves), axis=0)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan columns stay nan
        mean = np.nanmean(curves, axis=0)
        se = np.nanstd(curves, axis=0, ddof=1) / np.sqrt(count) if curves.shape[0] > 1 else 0 * mean
    return mean, np.nan_to_num(se)


def plot_curves(task: TaskResult, path: str | pathlib.Path) -> None:
    """Writes a PNG of the training loss against inner steps: mean over seeds with a ±1 SE band."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for result in task.results:
        mean, se = _finite_mean_se(result.runs.curves[0])
        style = {"linewidth": 2.4} if result.learned else {"linewidth": 1.2, "linestyle": "--"}
        (line,) = ax.plot(result.runs.steps, mean, label=result.label, **style)
        ax.fill_between(result.runs.steps, np.maximum(mean - se, 1e-12), mean + se,
                        color=line.get_color(), alpha=0.2)
    if math.isfinite(task.target_loss):
        ax.axhline(task.target_loss, color="gray", linewidth=0.8, linestyle=":", label="target loss")
    seeds = task.results[0].final_losses.size
    ax.set(yscale="log", xlabel="inner step", ylabel="training loss",
           title=f"{task.label}: mean ± SE over {seeds} held-out seeds")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def paired_verdict(learned: np.ndarray, baseline: np.ndarray) -> tuple[float, str]:
    """(ratio of mean final losses, "wins"/"loses"/"tie"/"diverges") from per-seed pairs.

    "diverges" if any learned run is not finite; otherwise "wins"/"loses" when the mean
    paired difference is more than two of its standard errors from zero.
    """
    if not np.all(np.isfinite(learned)):
        return math.inf, "diverges"
    if not np.all(np.isfinite(baseline)):
        return math.nan, "wins"  # no ratio to a diverged baseline
    ratio = float(np.mean(learned) / np.mean(baseline))
    diff, se = mean_and_se(np.asarray(learned, np.float64) - np.asarray(baseline, np.float64))
    if math.isnan(se) or abs(diff) <= 2 * se:
        return ratio, "tie"
    return ratio, "wins" if diff < 0 else "loses"


COMPARISON_COLUMNS = ("task", "steps", "learned optimizer", "final loss", "best tuned baseline",
                      "its final loss", "ratio", "verdict")


def comparison_rows(tasks: Sequence[TaskResult]) -> list[list[str]]:
    """Per task and learned optimizer: its final loss against the best tuned baseline's."""
    rows = []
    for task in tasks:
        best = best_baseline(task)
        for result in (r for r in task.results if r.learned):
            if best is None:
                continue
            ratio, verdict = paired_verdict(result.final_losses, best.final_losses)
            rows.append([task.label, str(task.num_steps), result.label,
                         format_mean_se(mean_and_se(result.final_losses)), best.label,
                         format_mean_se(mean_and_se(best.final_losses)),
                         f"{ratio:.2f}x" if math.isfinite(ratio) else ("—" if math.isnan(ratio) else "∞"),
                         verdict])
    return rows


def verdict_summary(comparison: Sequence[Sequence[str]]) -> str:
    """One sentence per verdict naming the tasks: where a learned optimizer wins, ties, loses, diverges."""
    by_verdict: dict[str, list[str]] = {}
    for row in comparison:
        by_verdict.setdefault(row[-1], []).append(f"{row[2]} on {row[0]}")
    order = ("wins", "tie", "loses", "diverges")
    return " ".join(f"**{verdict.capitalize()}:** {'; '.join(by_verdict[verdict])}."
                    for verdict in order if verdict in by_verdict)


def write_report(tasks: Sequence[TaskResult], folder: str | pathlib.Path, *, title: str,
                 intro: str = "", extra_sections: Sequence[str] = ()) -> dict[str, pathlib.Path]:
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
        lines += ["## Learned optimizers against the best tuned baseline", "",
                  "Ratio: mean final training loss of the learned optimizer over the best baseline's. "
                  "Verdict: paired difference over the same held-out seeds, beyond two standard errors.",
                  "", markdown_table(COMPARISON_COLUMNS, comparison), "", verdict_summary(comparison), ""]
    for task in tasks:
        png = folder / f"curves_{slug(task.label)}.png"
        plot_curves(task, png)
        written[task.label] = png
        seeds = task.results[0].final_losses.size
        lines += [f"## {task.label}", "",
                  f"{task.num_steps} inner steps, {seeds} held-out seeds; target loss "
                  f"{task.target_loss:.4g} (steps to target: first recorded step at or below it, "
                  "mean over the seeds that reached it).", "",
                  markdown_table(TABLE_COLUMNS, table_rows(task)), "",
                  f"![{task.label}]({png.name})", ""]
    lines += list(extra_sections)
    report = folder / "report.md"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written["report"] = report
    return written


def results_json(tasks: Sequence[TaskResult]) -> list[dict[str, Any]]:
    """The report's numbers as plain data (results.json), for scripts and RESULTS.md."""
    out = []
    for task in tasks:
        rows = []
        for row in summarize(task):
            rows.append({k: (list(v) if isinstance(v, tuple) else v) for k, v in row.items()})
        out.append({"task": task.label, "family": task.task, "steps": task.num_steps,
                    "target_loss": task.target_loss, "optimizers": rows})
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


def print_table(tasks: Sequence[TaskResult], out=None) -> None:
    """Prints each task's table (plain text, for the terminal)."""
    out = out or sys.stdout
    for task in tasks:
        rows = table_rows(task)
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(TABLE_COLUMNS)]
        print(f"\n{task.label} ({task.num_steps} steps, target loss {task.target_loss:.4g})", file=out)
        print("  ".join(c.ljust(w) for c, w in zip(TABLE_COLUMNS, widths)), file=out)
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)), file=out)


def describe_best(task: TaskResult) -> Optional[str]:
    """One line naming the best baseline and its chosen hyperparameters."""
    best = best_baseline(task)
    return None if best is None else f"best baseline on {task.label}: {best.label} ({_hparams(best.chosen, [])})"
