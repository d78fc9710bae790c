"""Meta-training curves of several runs side by side (e.g. geodesic-supervised vs loss-only).

The runs are compared on their validation meta-loss (`meta_train.validate_every`):
the same objective on the same held-out instances whatever the training objective,
so "meta-iterations to reach a level" is a fair measure of how fast each learns.
"""

from __future__ import annotations

import json
import math
import pathlib
from collections.abc import Mapping

import numpy as np

from trainers.errors import RunError
from trainers.reporting.plots import plot_meta_training
from trainers.reporting.tables import markdown_table

VALIDATION_KEY = "validation_meta_loss"
FINAL_KEY = "validation_final_loss"


def read_history(run_dir: str | pathlib.Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    """`(steps, values)` of one logged metric from `run_dir/metrics.jsonl`, sorted by step.

    A resumed run logs some steps twice; the last value of a step wins.
    """
    path = pathlib.Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing (not a meta-training run folder)")
    by_step: dict[int, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if key in row:
            by_step[int(row["step"])] = math.nan if row[key] is None else float(row[key])
    steps = np.array(sorted(by_step), dtype=np.int64)
    return steps, np.array([by_step[s] for s in steps], dtype=np.float64)


def first_step_at_or_below(steps: np.ndarray, values: np.ndarray, level: float) -> int | None:
    """The first step whose value is <= level, or None."""
    hits = np.flatnonzero(values <= level)
    return int(steps[hits[0]]) if hits.size else None


def compare_runs(runs: Mapping[str, str | pathlib.Path], key: str = VALIDATION_KEY) -> dict:
    """Meta-iterations each run needs to reach the same validation meta-loss.

    The common level is the highest of the runs' best values, so every run reaches it.

    Returns:
      `{"level": float, "runs": {label: {"steps_to_level": int, "best": float, "final": float}}}`.
    """
    histories = {label: read_history(path, key) for label, path in runs.items()}
    empty = [label for label, (steps, _) in histories.items() if not steps.size]
    if empty:
        raise RunError(f"runs {empty} logged no {key!r} (set meta_train.validate_every > 0)")
    level = max(float(np.nanmin(values)) for _, values in histories.values())
    return {
        "level": level,
        "runs": {
            label: {
                "steps_to_level": first_step_at_or_below(steps, values, level),
                "best": float(np.nanmin(values)),
                "final": float(values[-1]),
            }
            for label, (steps, values) in histories.items()
        },
    }


def comparison_markdown(comparison: dict, name: str = "validation meta-loss") -> str:
    """A markdown table of `compare_runs` of the metric called `name`."""
    rows = [
        [label, row["steps_to_level"], f"{row['best']:.4g}", f"{row['final']:.4g}"]
        for label, row in comparison["runs"].items()
    ]
    table = markdown_table(["run", "meta-iterations to the level", f"best {name}", "final"], rows)
    return f"Common level: {name} {comparison['level']:.4g} (the highest of the runs' best).\n\n{table}"


def plot_runs(
    runs: Mapping[str, str | pathlib.Path], path: str | pathlib.Path, title: str = "meta-training"
):
    """Writes a PNG: validation meta-loss (and the training loss term) against meta-iterations."""
    histories = {
        label: {
            "validation": read_history(run_dir, VALIDATION_KEY),
            "training": read_history(run_dir, "loss_term"),
        }
        for label, run_dir in runs.items()
    }
    return plot_meta_training(histories, path, title)


def training_section(
    runs: Mapping[str, str | pathlib.Path], folder: str | pathlib.Path
) -> str | None:
    """A report section comparing meta-training runs, with `meta_training.png` written to `folder`.

    Returns None unless there are 2+ runs and every one logged a validation meta-loss.
    """
    paths = [pathlib.Path(path) for path in runs.values()]
    if len(paths) < 2 or not all(
        (path / "metrics.jsonl").exists() and read_history(path, VALIDATION_KEY)[0].size
        for path in paths
    ):
        return None
    plot_runs(runs, pathlib.Path(folder) / "meta_training.png", "meta-training")
    return "\n".join(
        [
            "## Meta-training",
            "",
            "Validation meta-loss: mean minibatch loss of full-horizon runs from fresh parameters on held-out "
            "instances (the same quantity whatever each run's training objective).",
            "",
            comparison_markdown(compare_runs(runs)),
            "",
            "Validation final loss: the training loss at the end of those runs.",
            "",
            comparison_markdown(compare_runs(runs, FINAL_KEY), "validation final loss"),
            "",
            "![meta-training curves](meta_training.png)",
            "",
        ]
    )
