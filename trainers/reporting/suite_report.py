"""The suite section of an evaluation report: per-task scores and their aggregate over tasks.

`meta-opt evaluate --suite NAME` appends it to report.md and writes its numbers to
suite.json; `trainers.evaluation.suite_scores` computes them (pure, no plotting), this
module only formats them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from trainers.evaluation.suite_scores import Aggregate, Speedup, TaskScore, aggregate, score_suite
from trainers.reporting.tables import markdown_table


def _number(value: float, suffix: str = "") -> str:
    return "—" if math.isnan(value) else "∞" if math.isinf(value) else f"{value:.2f}{suffix}"


def _speedup_cell(value: float, speedup: Speedup) -> str:
    if speedup.diverged:
        return "0 (diverged)"
    return ("≥" if speedup.censored and math.isfinite(value) else "") + _number(value, "x")


TASK_COLUMNS = ("task", "train loss ratio", "verdict (train)", "test loss ratio", "verdict (test)")
TASK_COLUMNS += ("speed-up over Adam (steps)", "speed-up over Adam (wall clock)")
AGGREGATE_COLUMNS = ("score", "better", "IQM [bootstrap CI]", "geometric mean", "tasks", "counts")


def task_rows(scores: Sequence[TaskScore]) -> list[list[str]]:
    """One row per task, in `TASK_COLUMNS` order; "≥" marks a censored (lower-bound) speed-up."""
    return [
        [s.task, _number(s.train.ratio, "x"), s.train.verdict or "—"]
        + [_number(s.test.ratio, "x"), s.test.verdict or "—"]
        + [_speedup_cell(s.speedup.steps, s.speedup), _speedup_cell(s.speedup.wallclock, s.speedup)]
        for s in scores
    ]


def aggregate_rows(aggregates: Sequence[Aggregate]) -> list[list[str]]:
    """One row per score, in `AGGREGATE_COLUMNS` order (IQM [low, high], counts "n verdict")."""
    return [
        [a.score.replace("_", " "), f"{a.better} is better"]
        + [f"{_number(a.iqm)} [{_number(a.low)}, {_number(a.high)}]", _number(a.geometric_mean)]
        + [f"{a.tasks} of {a.total}", ", ".join(f"{n} {k}" for k, n in a.counts.items())]
        for a in aggregates
    ]


def suite_scores(
    tasks: Sequence[Any], learned: Sequence[str], *, seed: int = 0, resamples: int = 2000
) -> dict[str, tuple[list[TaskScore], list[Aggregate]]]:
    """Per learned optimizer label: its task scores and their aggregates (`suite_scores`)."""
    out = {}
    for label in learned:
        scores = score_suite(tasks, learned=label)
        out[label] = (scores, aggregate(scores, resamples=resamples, seed=seed))
    return out


def suite_section(
    name: str, description: str, unseen: bool, scored: Mapping[str, tuple[list, list]]
) -> str:
    """The markdown section of suite `name`: one task table and one aggregate table per optimizer."""
    claim = (
        "Marked unseen: no task here is of a kind any evaluated optimizer met in meta-training "
        "(checked before the run)."
        if unseen
        else "Not marked unseen: some tasks may be of kinds an optimizer met in meta-training."
    )
    lines = [f"## Suite `{name}`", "", description.strip(), "", claim, ""]
    lines += [
        "Per task: the learned optimizer's mean final training loss over the best tuned "
        "baseline's, and its mean test loss over the baseline lowest on test loss, each with "
        "the paired verdict over the same held-out seeds; the speed-up over tuned Adam is the "
        "steps Adam's best learning rate needs to reach the learned optimizer's final training "
        "loss over the learned optimizer's steps (≥: Adam never reached it, a lower bound), "
        "and the same in wall-clock time (seconds per step measured in this run). Over tasks: "
        "the interquartile mean with a 95% percentile bootstrap interval over tasks (rliable), "
        "the geometric mean, and the verdict counts.",
        "",
    ]
    for label, (scores, aggregates) in scored.items():
        lines += [f"### `{label}` on `{name}`", "", markdown_table(TASK_COLUMNS, task_rows(scores))]
        lines += ["", markdown_table(AGGREGATE_COLUMNS, aggregate_rows(aggregates)), ""]
    return "\n".join(lines)


def suite_json(
    name: str, path: str, unseen: bool, scored: Mapping[str, tuple[list, list]]
) -> dict[str, Any]:
    """suite.json: the suite and, per learned optimizer, every task score and aggregate."""
    as_dict = lambda item: {
        k: (v._asdict() if hasattr(v, "_asdict") else v) for k, v in vars(item).items()
    }
    return {
        "suite": name,
        "file": path,
        "unseen": unseen,
        "optimizers": {
            label: {
                "tasks": [as_dict(score) | {"speedup": vars(score.speedup)} for score in scores],
                "aggregate": [vars(a) for a in aggregates],
            }
            for label, (scores, aggregates) in scored.items()
        },
    }
