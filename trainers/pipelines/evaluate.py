"""The evaluation job behind `meta-opt evaluate`: load checkpoints, compare, write the report.

The run folder gets `report.md` (tables and plots), `curves_<task>.png`,
`results.json` (every number, for scripts), `config.yaml` (the resolved config of
the first checkpoint with the `evaluation` section used) and the W&B run.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import tasks.registry
from common.atomic import write_text
from common.progress import progress_bar
from trainers.config import (
    ConfigError,
    apply_overrides,
    attribute_override,
    from_dict,
    save_config,
    to_dict,
)
from trainers.config.evaluation_section import EvalTaskConfig, EvaluationConfig
from trainers.config.experiment import ExperimentConfig
from trainers.config.sections import LoggingConfig
from trainers.config.task_families import family_for
from trainers.errors import RunError
from trainers.evaluation.contenders import Contender, baseline, learned_contender
from trainers.evaluation.evaluate import TaskResult, evaluate_task, evaluation_keys
from trainers.evaluation.task_list import resolve_tasks
from trainers.io.run_logger import RunLogger
from trainers.pipelines.learned_checkpoints import (
    PRETRAINED,
    LearnedCheckpoint,
    checkpoint_folder,
    load_learned,
)
from trainers.pipelines.suite_evaluation import plan_suite
from trainers.reporting.evaluation_report import log_to_wandb, results_json, write_report
from trainers.reporting.training_report import training_section

# The checkpoint readers live in `learned_checkpoints`; they stay importable from here.
__all__ = [
    "PRETRAINED",
    "LearnedCheckpoint",
    "checkpoint_folder",
    "contenders_for",
    "evaluate_command",
    "load_learned",
    "parse_checkpoint_arguments",
    "run_evaluation",
]


def parse_checkpoint_arguments(values: Sequence[str]) -> list[tuple[str, str]]:
    """`["DIR", "name=DIR2"]` -> [(label, path)]; labels default to "lstm", or the run folder names."""
    pairs = [tuple(v.split("=", 1)) if "=" in v else (None, v) for v in values]
    default = lambda path: (
        path[len(PRETRAINED) :]
        if path.startswith(PRETRAINED)
        else ("lstm" if len(pairs) == 1 else f"lstm ({pathlib.Path(path).resolve().name})")
    )
    labels = [label or default(path) for label, path in pairs]
    if len(set(labels)) != len(labels):
        raise RunError(f"two checkpoints share the label {labels}: name them as LABEL=DIR")
    return [(label, path) for label, (_, path) in zip(labels, pairs)]


def contenders_for(
    evaluation: EvaluationConfig, learned: Sequence[LearnedCheckpoint], num_steps: int
) -> list[Contender]:
    """The learned optimizers first, then the configured baselines with their grids (for runs of
    `num_steps`, which a decaying schedule needs)."""
    out = [learned_contender(c.label, c.config.meta_train.lstm, c.meta_params) for c in learned]
    out += [
        baseline(name, evaluation.learning_rates, evaluation.dampings, num_steps)
        for name in evaluation.baselines
    ]
    return out


def run_evaluation(
    evaluation: EvaluationConfig,
    task_configs: Sequence[EvalTaskConfig],
    learned: Sequence[LearnedCheckpoint],
    *,
    seed: int,
    data_dir: str | None,
    folder: pathlib.Path,
    logging: LoggingConfig,
    run_config: dict[str, Any],
    progress: bool = True,
    title: str = "Learned optimizers against tuned baselines",
    intro: str = "",
    extra_sections: Sequence[str] = (),
    closing: Callable[[list[TaskResult], RunLogger], list[str]] | None = None,
) -> tuple[list[TaskResult], dict]:
    """Evaluates every contender on every task; writes the report and logs it to W&B.

    `closing(results, logger)`, where given, returns sections put after `extra_sections` (a
    suite's aggregate, made from the results; it may log summary values).

    Returns:
      `(task results, written files {"report": ..., <task label>: png, "results": results.json})`.
    """
    count = len(learned) + len(evaluation.baselines)
    results: list[TaskResult] = []
    folder.mkdir(parents=True, exist_ok=True)
    root_seed = seed if evaluation.seed is None else evaluation.seed
    with (
        RunLogger(folder, run_config, logging, job_type="evaluate") as logger,
        progress_bar(len(task_configs) * count, "evaluate", unit="run", enabled=progress) as bar,
    ):
        for index, task_config in enumerate(task_configs):
            family = family_for(task_config.name, task_config.options, data_dir)
            tuning_keys, held_out_keys = evaluation_keys(
                root_seed, index, evaluation.tuning_seeds, evaluation.seeds
            )

            def done(label, task_label=task_config.label):
                bar.set_postfix_str(f"{task_label}: {label}")
                bar.update()

            results.append(
                evaluate_task(
                    family,
                    contenders_for(evaluation, learned, task_config.steps),
                    task_config.steps,
                    tuning_keys=tuning_keys,
                    held_out_keys=held_out_keys,
                    label=task_config.label,
                    record_points=evaluation.record_points,
                    target_loss=evaluation.target_loss,
                    on_contender=done,
                    parallel_runs=evaluation.parallel_runs,
                    reference_steps=evaluation.speedup_horizon * task_config.steps,
                )
            )
        sections = [*extra_sections, *(closing(results, logger) if closing else [])]
        written = write_report(results, folder, title=title, intro=intro, extra_sections=sections)
        write_text(folder / "results.json", json.dumps(results_json(results), indent=2) + "\n")
        written["results"] = folder / "results.json"
        log_to_wandb(logger, results, written)
        written["wandb"] = logger.run_path
    return results, written


def evaluate_command(
    checkpoints: Sequence[tuple[str, str]],
    settings: dict[str, Any],
    task_names: Sequence[str],
    out: str | None,
    *,
    overrides: Sequence[str] = (),
    add_baselines: Sequence[str] = (),
    progress: bool = True,
    suite: str | None = None,
):
    """What `meta-opt evaluate` does, without printing; returns (task results, written files).

    Args:
      checkpoints: (label, checkpoint or run folder) pairs; the first one's config is used.
      settings: `evaluation` fields set by command-line flags (steps, seeds, ...).
      task_names: extra tasks (`--tasks`).
      out: the run folder; None = `<first run's folder>/../evaluate` (for a pretrained
        optimizer first: `<out_dir>/pretrained_<name>/evaluate`).
      overrides: dotted overrides of the config, e.g. "evaluation.learning_rates=[0.01,0.1]".
      add_baselines: appended to the configured baselines (`--jacobi`).
      suite: a suite name or file (`--suite`): its tasks replace the task list, and its
        aggregate over tasks closes the report (`trainers.pipelines.suite_evaluation`).
    """
    learned = [load_learned(path, label) for label, path in checkpoints]
    config = learned[0].config
    if overrides:
        source = f"<config of {learned[0].path}>"
        try:
            config = from_dict(
                ExperimentConfig, apply_overrides(to_dict(config), overrides), source=source
            )
        except ConfigError as err:
            raise attribute_override(err, overrides) from None
    baselines = tuple(
        dict.fromkeys((*settings.get("baselines", config.evaluation.baselines), *add_baselines))
    )
    flags = {**settings, "baselines": baselines}
    try:  # command-line flags are checked like config keys
        evaluation = from_dict(
            EvaluationConfig,
            {**to_dict(config.evaluation), **flags},
            source="<command line>",
            path="evaluation",
        )
    except ConfigError as err:
        raise ConfigError(err.problem, key=err.key, source="command-line flags") from None
    for name in task_names:  # an unknown task name fails before any work
        if name not in tasks.registry.FAMILIES:
            raise RunError(
                f"--tasks: unknown task {name!r}; known tasks: {', '.join(tasks.registry.list_tasks())}"
            )
    first = learned[0]  # the report sits beside the first run: <experiment>/evaluate
    if first.pretrained:
        experiment = pathlib.Path(config.out_dir) / f"pretrained_{first.path.name}"
    else:  # beside the run folder, or beside a checkpoint folder copied out of its run
        experiment = (first.run_folder or first.path).parent
    folder = pathlib.Path(out) if out else experiment / "evaluate"
    plan = None
    if suite is not None:  # checked (an unseen suite against what each optimizer saw) first
        plan = plan_suite(suite, learned, evaluation, folder, task_names=task_names)
        evaluation = plan.evaluation
    config = dataclasses.replace(config, evaluation=evaluation)
    task_configs = (
        plan.tasks
        if plan
        else resolve_tasks(
            evaluation,
            config.task.name,
            config.task.options,
            config.meta_train.unroll.horizon,
            task_names,
            config.data_dir,
        )
    )
    save_config(config, folder / "config.yaml")
    intro = (
        "Checkpoints: "
        + ", ".join(f"`{c.label}` = {c.path} (meta-step {c.step})" for c in learned)
        + (
            f". Tasks other than `{config.task.name}` use the training task's network options."
            if task_names
            else "."
        )
    )
    run_config = {**to_dict(config), "checkpoints": {c.label: str(c.path) for c in learned}}
    training = training_section(
        {c.label: c.run_folder for c in learned if c.run_folder is not None}, folder
    )
    results, written = run_evaluation(
        evaluation,
        task_configs,
        learned,
        seed=config.seed,
        data_dir=config.data_dir,
        folder=folder,
        logging=config.logging,
        run_config=run_config,
        progress=progress,
        intro=intro,
        extra_sections=[training] if training else [],
        closing=plan.closing if plan else None,
    )
    return results, written
