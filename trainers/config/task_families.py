"""Task sections against the task registry: their load-time checks and the families they name.

Everything a config does with `tasks.registry` is here: `check_task` type-checks a task
section when the config loads (no JAX), and `build_family` / `family_for` /
`extra_families` turn task sections into `TaskFamily`s, with the meta-training task
variation (`task_variation`) on top where training asks for it. Apart from the schema
in `trainers.config.experiment`, which re-exports these names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import tasks.registry
from trainers.config.loader import ConfigError, attribute_override, from_dict
from trainers.config.sections import TaskConfig

if TYPE_CHECKING:
    from trainers.config.experiment import ExperimentConfig


def check_task(
    task: TaskConfig, *, source: str = "", overrides: Sequence[str] = (), at: str = "task"
) -> None:
    """Type-checks a task section against its family's options dataclass.

    Args:
      task: the task section.
      source: the config file, named in errors.
      overrides: the overrides applied to the config, named in errors they caused.
      at: where the section is in the config (errors name `<at>.name`, `<at>.options`).

    Raises:
      ConfigError: at `task.name` for an unknown task, at `task.options.<key>` for
        an unknown option or a wrong type, at `task.options` for a value the
        family rejects (its message names the option).
    """
    try:
        options_type = tasks.registry.options_type(task.name)
    except KeyError as err:
        located = ConfigError(err.args[0], key=f"{at}.name", source=source)
        raise attribute_override(located, overrides) from err
    try:
        from_dict(options_type, task.options, source=source, path=f"{at}.options")
    except ConfigError as err:
        raise attribute_override(err, overrides) from err


def task_variation(config: ExperimentConfig, task: TaskConfig | None = None) -> dict[str, Any]:
    """The task options meta-training sets on top of `task.options` (default: the config's task):
    `meta_train.task_variation`, or where that is null the task family's default
    (`tasks.meta_training_variation`). For an extra task, only the options its family has."""
    task = task or config.task
    variation = config.meta_train.task_variation
    if variation is None:
        return tasks.registry.meta_training_variation(task.name)
    if task is config.task:
        return dict(variation)
    fields = {f.name for f in dataclasses.fields(tasks.registry.options_type(task.name))}
    return {k: v for k, v in variation.items() if k in fields}


def extra_families(config: ExperimentConfig) -> list:
    """The meta-training families of `meta_train.extra_tasks`, each with its task variation."""
    return [
        family_for(t.name, {**t.options, **task_variation(config, t)}, config.data_dir)
        for t in config.meta_train.extra_tasks
    ]


def build_family(config: ExperimentConfig, *, training: bool = False):
    """The `TaskFamily` a config names, with the run's `data_dir` for data-backed tasks.

    A `data_dir` set in the task options wins over the top-level one. `training`: the
    meta-training family, with `task_variation(config)` on top of the task options.
    """
    options = {**config.task.options, **(task_variation(config) if training else {})}
    return family_for(config.task.name, options, config.data_dir)


def family_for(name: str, options: Mapping[str, Any], data_dir: str | None = None):
    """`tasks.get_family(name, **options)`, giving data-backed families `data_dir` unless set."""
    options = dict(options)
    fields = {f.name for f in dataclasses.fields(tasks.registry.options_type(name))}
    if "data_dir" in fields and data_dir is not None:
        options.setdefault("data_dir", data_dir)
    return tasks.registry.get_family(name, **options)
