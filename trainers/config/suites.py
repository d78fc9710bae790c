"""Named evaluation suites: the task lists behind `meta-opt evaluate --suite NAME`.

A suite is a YAML file in `configs/suites/` (or any path): a description, a default step
count and a list of task rows in the form of `evaluation.tasks`. A suite marked `unseen`
claims that its tasks are of kinds (`tasks.registry.FamilySpec.kind`) that the evaluated
optimizers never met in meta-training; `trainers.evaluation.seen_tasks` refuses to run it
for an optimizer whose meta-training saw one of them. Loading a suite checks every task
row against its family's options, without JAX.
"""

from __future__ import annotations

import dataclasses
import pathlib

from trainers.config.evaluation_section import EvalTaskConfig
from trainers.config.loader import ConfigError, load_config
from trainers.config.sections import TaskConfig
from trainers.config.task_families import check_task

SUITES_DIR = pathlib.Path(__file__).resolve().parents[2] / "configs" / "suites"


@dataclasses.dataclass(frozen=True)
class SuiteConfig:
    """A named list of evaluation tasks.

    Attributes:
      description: what the suite measures, for the report.
      unseen: the tasks' kinds must be absent from every evaluated optimizer's meta-training.
      steps: inner steps of a task row without its own.
      speedup_horizon: Adam's grid also runs this many times each task's steps, the reference
        of speed-ups over Adam (`EvaluationConfig.speedup_horizon`, which wins where set).
      tasks: the task rows (`EvalTaskConfig`: name, options, steps, label).
    """

    description: str = ""
    unseen: bool = False
    steps: int = 100
    speedup_horizon: int = 4
    tasks: tuple[EvalTaskConfig, ...] = ()

    def __post_init__(self):
        if not self.tasks:
            raise ValueError("a suite needs at least one task")
        if self.steps < 1 or self.speedup_horizon < 1:
            raise ValueError(
                f"steps and speedup_horizon must be >= 1, got {self.steps}, {self.speedup_horizon}"
            )
        labels = [task.label or task.name for task in self.tasks]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"task labels must differ (set `label`), repeated: {repeated}")


def list_suites() -> list[str]:
    """The names `--suite` accepts without a path: the YAML files of `configs/suites/`."""
    return sorted(path.stem for path in SUITES_DIR.glob("*.yaml"))


def suite_path(name: str) -> pathlib.Path:
    """The file of suite `name`: `configs/suites/<name>.yaml`, or `name` itself if it is a file.

    Raises:
      ConfigError: neither exists; the message lists the known suites.
    """
    path = pathlib.Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    named = SUITES_DIR / f"{name}.yaml"
    if named.is_file():
        return named
    raise ConfigError(
        f"unknown suite {name!r}: not a YAML file and not one of {', '.join(list_suites())} "
        f"(in {SUITES_DIR})",
        key="--suite",
    )


def load_suite(name: str) -> tuple[str, SuiteConfig]:
    """`(suite name, suite)` with every task row's steps and label filled in.

    Raises:
      ConfigError: an unknown suite, a bad key or type, or a task row naming an unknown task
        or option (at `tasks[i].name` / `tasks[i].options.<key>`).
    """
    path = suite_path(name)
    suite = load_config(SuiteConfig, path)
    for i, row in enumerate(suite.tasks):
        check_task(TaskConfig(row.name, row.options), source=str(path), at=f"tasks[{i}]")
    rows = tuple(
        dataclasses.replace(row, steps=row.steps or suite.steps, label=row.label or row.name)
        for row in suite.tasks
    )
    return path.stem, dataclasses.replace(suite, tasks=rows)
