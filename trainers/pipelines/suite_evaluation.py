"""`meta-opt evaluate --suite NAME`: a named task list in place of the training task, and its aggregate.

The suite (`trainers.config.suites`) replaces the evaluated tasks; a suite marked
`unseen` is refused for an optimizer whose meta-training saw one of its task kinds
(`trainers.evaluation.seen_tasks`) before any work. Adam's grid also runs
`speedup_horizon` times each task's steps, so speed-ups over Adam can exceed 1. After the
tasks, every learned optimizer's per-task scores and their interquartile mean over tasks
(`trainers.evaluation.suite_scores`) go into report.md, suite.json and the W&B summary.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from collections.abc import Callable, Sequence

from common.atomic import write_text
from trainers.config.evaluation_section import EvalTaskConfig, EvaluationConfig
from trainers.config.suites import load_suite, suite_path
from trainers.errors import RunError
from trainers.evaluation.evaluate import TaskResult
from trainers.evaluation.seen_tasks import check_unseen
from trainers.io.run_logger import RunLogger
from trainers.pipelines.learned_checkpoints import LearnedCheckpoint
from trainers.reporting.suite_report import suite_json, suite_scores, suite_section

SUITE_JSON = "suite.json"


@dataclasses.dataclass(frozen=True)
class SuitePlan:
    """What a suite changes in an evaluation: its tasks, the evaluation section, the closing."""

    name: str
    tasks: list[EvalTaskConfig]
    evaluation: EvaluationConfig
    closing: Callable[[list[TaskResult], RunLogger], list[str]]


def plan_suite(
    suite: str,
    learned: Sequence[LearnedCheckpoint],
    evaluation: EvaluationConfig,
    folder: pathlib.Path,
    *,
    task_names: Sequence[str] = (),
    seed: int = 0,
) -> SuitePlan:
    """The suite's tasks and aggregate for evaluating `learned` into `folder`.

    Args:
      suite: a name in `configs/suites/` or a YAML path.
      learned: the evaluated optimizers (their training configs say what they saw).
      evaluation: the evaluation section; its `speedup_horizon` wins over the suite's if set.
      folder: the run folder (suite.json is written there).
      task_names: `--tasks`, which a suite replaces (an error if given).
      seed: the bootstrap's seed.

    Raises:
      RunError: `--tasks` or `--generalization` beside a suite, or an `unseen` suite for an
        optimizer whose meta-training saw one of its kinds.
      ConfigError: an unknown suite or a bad suite file.
    """
    if task_names or evaluation.generalization:
        raise RunError("--suite is the whole task list: drop --tasks and --generalization")
    name, config = load_suite(suite)
    if config.unseen:
        check_unseen(name, config.tasks, [(c.label, c.config) for c in learned])
    horizon = evaluation.speedup_horizon or config.speedup_horizon
    evaluation = dataclasses.replace(evaluation, speedup_horizon=horizon)

    def closing(results: list[TaskResult], logger: RunLogger) -> list[str]:
        scored = suite_scores(results, [c.label for c in learned], seed=seed)
        data = suite_json(name, str(suite_path(suite)), config.unseen, scored)
        write_text(folder / SUITE_JSON, json.dumps(data, indent=2, default=float) + "\n")
        logger.log_summary(summary_scalars(data))
        return [suite_section(name, config.description, config.unseen, scored)]

    return SuitePlan(name, list(config.tasks), evaluation, closing)


def summary_scalars(data: dict) -> dict[str, float]:
    """`suite/<optimizer>/<score>_iqm` (and _low, _high) of a suite.json's data, for W&B."""
    out = {}
    for label, scored in data["optimizers"].items():
        for row in scored["aggregate"]:
            for field in ("iqm", "low", "high"):
                value = float(row[field])
                if math.isfinite(value):
                    out[f"suite/{label}/{row['score']}_{field}"] = value
    return out
