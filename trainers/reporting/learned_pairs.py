"""Two learned optimizers of one evaluation, task by task, from its results.json.

`meta-opt evaluate` compares every learned optimizer with the best tuned baseline. When
several learned optimizers ran on the same held-out seeds (repeated `--checkpoint`), the
question "is A at least as good as B?" is a paired comparison per task over those seeds,
and over many tasks a family: each task's two-sided paired t-test p-value is
Holm-adjusted over the tasks, and with a margin, two one-sided tests can call a task
"equivalent" (`trainers.evaluation.hypothesis_tests`). The command line is
`configs/compare_learned.py`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from trainers.evaluation.hypothesis_tests import comparison_verdict, holm, paired_test
from trainers.reporting.tables import markdown_table

COLUMNS = (
    "task",
    "A",
    "B",
    "ratio A / B",
    "p (Holm over tasks)",
    "verdict for A",
    "ms per step A / B",
    "time to target A / B",
)


METRICS = ("final_loss", "test_loss")  # stored per seed in results.json


def _row(task: dict[str, Any], label: str) -> dict[str, Any] | None:
    return next((o for o in task["optimizers"] if o["optimizer"] == label), None)


def compare_learned(
    results: Sequence[dict[str, Any]],
    a: str,
    b: str,
    metric: str = "final_loss",
    margin: float = 0.05,
) -> list[dict[str, Any]]:
    """Per task holding both: means, ratio, Holm-adjusted p, verdict for a, and their step costs.

    Args:
      results: `results.json` of one evaluation (a list of tasks).
      a, b: optimizer labels as the report shows them.
      metric: "final_loss" or "test_loss" (their per-seed lists are compared).
      margin: equivalence margin as a fraction of b's mean (0: none).

    Raises:
      ValueError: another metric (the others are not stored per seed).
    """
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {', '.join(METRICS)}, got {metric!r}")
    metric = f"per_seed_{metric}"
    rows = []
    for task in results:
        row_a, row_b = _row(task, a), _row(task, b)
        if row_a is None or row_b is None or metric not in row_a or metric not in row_b:
            continue
        values_a, values_b = np.asarray(row_a[metric]), np.asarray(row_b[metric])
        mean_b = float(np.mean(values_b))
        test = paired_test(values_a, values_b, margin * abs(mean_b) if margin else None)
        diverged = not np.all(np.isfinite(values_a))
        rows.append(
            {
                "task": task["task"],
                "mean_a": float(np.mean(values_a)),
                "mean_b": mean_b,
                "ratio": float(np.mean(values_a)) / mean_b,
                "p": test.p,
                "p_equivalence": test.p_equivalence,
                "mean_difference": test.mean,
                "diverged": diverged,
                "b_diverged": not np.all(np.isfinite(values_b)),
                "step_seconds": (row_a.get("step_seconds"), row_b.get("step_seconds")),
                "seconds_to_target": (
                    row_a.get("seconds_to_target"),
                    row_b.get("seconds_to_target"),
                ),
            }
        )
    for row, p, p_eq in zip(
        rows, holm([r["p"] for r in rows]), holm([r["p_equivalence"] for r in rows])
    ):
        row["p_adjusted"], row["p_equivalence_adjusted"] = float(p), float(p_eq)
        row["verdict"] = comparison_verdict(
            row["diverged"], row["b_diverged"], row["mean_difference"], p, p_eq
        )
    return rows


def _seconds(value: float | None, scale: float = 1.0, unit: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "never" if value == math.inf else "—"
    return f"{scale * value:.3g}{unit}"


def comparison_table(rows: Sequence[dict[str, Any]]) -> str:
    """The comparison as a markdown table (COLUMNS)."""
    return markdown_table(
        list(COLUMNS),
        [
            [
                r["task"],
                f"{r['mean_a']:.3g}",
                f"{r['mean_b']:.3g}",
                f"{r['ratio']:.2f}x",
                "—" if math.isnan(r["p_adjusted"]) else f"{r['p_adjusted']:.3g}",
                r["verdict"],
                " / ".join(_seconds(s, 1000) for s in r["step_seconds"]),
                " / ".join(_seconds(s, 1.0, " s") for s in r["seconds_to_target"]),
            ]
            for r in rows
        ],
    )
