"""Two learned optimizers of one evaluation, task by task, from its results.json.

`meta-opt evaluate` compares every learned optimizer with the best tuned baseline. When
several learned optimizers ran on the same held-out seeds (repeated `--checkpoint`), the
question "is A at least as good as B?" is a paired comparison per task over those seeds,
and over many tasks a family: each task's two-sided paired t-test p-value is
Holm-adjusted over the tasks, and with a margin, two one-sided tests can call a task
"equivalent" (`trainers.evaluation.hypothesis_tests`). Two *arms* of K meta-seeds each (e.g.
`none_0..none_4` against `teacher_0..teacher_4`, evaluated with `--checkpoint
arm:<arm>@<k>`) are compared the same way with one value per meta-seed (its mean over the
held-out seeds), paired by meta-seed: the variance between meta-training runs is then in
the test. The command line is `configs/compare_learned.py`.
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


def _values(rows: Sequence[dict[str, Any]], metric: str) -> np.ndarray:
    """One optimizer's per-seed values, or a group's per-member means (one per meta-seed)."""
    if len(rows) == 1:
        return np.asarray(rows[0][metric], dtype=float)
    return np.asarray([np.mean(row[metric]) for row in rows], dtype=float)


def _cost(rows: Sequence[dict[str, Any]], key: str) -> float | None:
    """A group's median of a per-optimizer cost (step seconds, time to target); None if unmeasured."""
    values = [row.get(key) for row in rows]
    return None if any(v is None for v in values) else float(np.median(values))


def compare_learned(
    results: Sequence[dict[str, Any]],
    a: str | Sequence[str],
    b: str | Sequence[str],
    metric: str = "final_loss",
    margin: float = 0.05,
) -> list[dict[str, Any]]:
    """Per task holding both: means, ratio, Holm-adjusted p, verdict for a, and their step costs.

    Args:
      results: `results.json` of one evaluation (a list of tasks).
      a, b: optimizer labels as the report shows them, each one label (paired by held-out
        seed) or a group of K labels, one per meta-seed (paired by position: meta-seed k
        of a with meta-seed k of b; each member counts as its mean over the held-out seeds).
      metric: "final_loss" or "test_loss" (their per-seed lists are compared).
      margin: equivalence margin as a fraction of b's mean (0: none).

    Raises:
      ValueError: another metric (the others are not stored per seed), or groups of
        different sizes (they are paired by meta-seed).
    """
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {', '.join(METRICS)}, got {metric!r}")
    a, b = ([a] if isinstance(a, str) else list(a)), ([b] if isinstance(b, str) else list(b))
    if len(a) != len(b) and len(a) * len(b) > 1:
        raise ValueError(
            f"groups of {len(a)} and {len(b)} optimizers: arms are paired by meta-seed, "
            "so both need one label per meta-seed"
        )
    metric = f"per_seed_{metric}"
    rows = []
    for task in results:
        rows_a, rows_b = [_row(task, x) for x in a], [_row(task, x) for x in b]
        if any(r is None or metric not in r for r in rows_a + rows_b):
            continue
        values_a, values_b = _values(rows_a, metric), _values(rows_b, metric)
        mean_b = float(np.mean(values_b))
        test = paired_test(values_a, values_b, margin * abs(mean_b) if margin else None)
        rows.append(
            {
                "task": task["task"],
                "mean_a": float(np.mean(values_a)),
                "mean_b": mean_b,
                "ratio": float(np.mean(values_a)) / mean_b,
                "p": test.p,
                "p_equivalence": test.p_equivalence,
                "mean_difference": test.mean,
                "diverged": not np.all(np.isfinite(values_a)),
                "b_diverged": not np.all(np.isfinite(values_b)),
                "step_seconds": (_cost(rows_a, "step_seconds"), _cost(rows_b, "step_seconds")),
                "seconds_to_target": (
                    _cost(rows_a, "seconds_to_target"),
                    _cost(rows_b, "seconds_to_target"),
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
