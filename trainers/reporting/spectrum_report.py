"""The report of `meta-opt geodesics spectrum`: index against loss, by where the points come from."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from geodesic_targets.landscape import index_loss_fit
from trainers.evaluation.statistics import mean_and_se
from trainers.reporting.plots import save_figure
from trainers.reporting.tables import format_mean_se, format_number, markdown_table

Row = Mapping[str, Any]
GROUP_COLUMNS = (
    "points",
    "where",
    "loss (min – max)",
    "index (mean ± SE)",
    "λ_min (mean)",
    "λ_max (mean)",
    "‖∇F‖ (median)",
    "index > 0",
    "slope of index on loss",
    "correlation",
)
STEP_COLUMNS = ("optimizer", "step", "loss", "index (mean ± SE)", "λ_min", "λ_max", "‖∇F‖")


def group_of(row: Row) -> str:
    """The group a measured point belongs to: an optimizer's trajectory, the beads, or the high points."""
    return f"{row['optimizer']} trajectory" if row["source"] == "trajectory" else row["source"]


def groups(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """Rows by `group_of`, in order of first appearance."""
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(group_of(row), []).append(row)
    return grouped


def _mean_se(values: np.ndarray) -> str:
    """Mean ± standard error over points, as every report table writes it (a single point: its value)."""
    return format_mean_se(mean_and_se(values))


def group_summary(rows: Sequence[Row]) -> dict[str, dict[str, Any]]:
    """Per group: the fit of index on loss and the numbers the report's first table shows."""
    summary = {}
    for name, members in groups(rows).items():
        column = lambda key, members=members: np.asarray([r[key] for r in members], np.float64)
        summary[name] = {
            "points": len(members),
            "loss_min": float(column("loss").min()),
            "loss_max": float(column("loss").max()),
            "index_mean": float(column("index").mean()),
            "smallest_mean": float(column("smallest").mean()),
            "largest_mean": float(column("largest").mean()),
            "grad_norm_median": float(np.median(column("grad_norm"))),
            "fraction_index_positive": float(np.mean(column("index") > 0)),
            **index_loss_fit(column("loss"), column("index")),
        }
    return summary


def spectrum_markdown(rows: Sequence[Row], title: str, settings: str) -> str:
    """The report: a table per group, then a row per trajectory step (mean over seeds)."""
    summary = group_summary(rows)
    table = []
    for name, members in groups(rows).items():
        s, index = summary[name], np.asarray([r["index"] for r in members], np.float64)
        table.append(
            [
                s["points"],
                name,
                f"{format_number(s['loss_min'], 3)} – {format_number(s['loss_max'], 3)}",
                _mean_se(index),
                format_number(s["smallest_mean"], 3),
                format_number(s["largest_mean"], 3),
                format_number(s["grad_norm_median"], 3),
                f"{100 * s['fraction_index_positive']:.0f}%",
                format_number(s["slope"], 3),
                format_number(s["correlation"], 2),
            ]
        )
    steps = []
    trajectory = [r for r in rows if r["source"] == "trajectory"]
    for key in dict.fromkeys((r["optimizer"], r["step"]) for r in trajectory):
        at = [r for r in trajectory if (r["optimizer"], r["step"]) == key]
        mean = lambda name, at=at: format_number(float(np.mean([r[name] for r in at])), 3)
        steps.append(
            [
                *key,
                mean("loss"),
                _mean_se(np.asarray([r["index"] for r in at], np.float64)),
                mean("smallest"),
                mean("largest"),
                mean("grad_norm"),
            ]
        )
    parts = [
        f"# {title}\n",
        settings + "\n",
        "![index against loss](index_vs_loss.png)\n",
        "## By where the points come from\n",
        markdown_table(GROUP_COLUMNS, table) + "\n",
    ]
    if steps:
        parts += [
            "## Along the trajectories (mean over seeds)\n",
            markdown_table(STEP_COLUMNS, steps) + "\n",
        ]
    return "\n".join(parts)


def plot_index_vs_loss(rows: Sequence[Row], path: str | pathlib.Path, title: str) -> Figure:
    """Dauphin et al.'s figure: the index against the loss, and the smallest eigenvalue against it."""
    fig = Figure(figsize=(10, 4))
    index_axis, smallest_axis = fig.subplots(1, 2)
    markers = {"beads": "s", "segment high points": "^"}
    for name, members in groups(rows).items():
        loss = [r["loss"] for r in members]
        style = dict(marker=markers.get(name, "o"), linestyle="none", alpha=0.75, label=name)
        index_axis.plot(loss, [100 * r["index"] for r in members], **style)
        smallest_axis.plot(loss, [r["smallest"] for r in members], **style)
    index_axis.set(xlabel="loss", ylabel="index: eigenvalues < -ε (%)", title=title)
    smallest_axis.set(
        xlabel="loss", ylabel="smallest Hessian eigenvalue (Ritz)", title="most negative curvature"
    )
    smallest_axis.axhline(0.0, color="gray", linewidth=0.8)
    for axis in (index_axis, smallest_axis):
        axis.set_xscale("log")
        axis.legend(fontsize=8)
    return save_figure(fig, path)
