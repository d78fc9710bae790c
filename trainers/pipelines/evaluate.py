"""The evaluation job behind `meta-opt evaluate`: load checkpoints, compare, write the report.

The run folder gets `report.md` (tables and plots), `curves_<task>.png`,
`results.json` (every number, for scripts), `config.yaml` (the resolved config of
the first checkpoint with the `evaluation` section used) and the W&B run.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Sequence
from typing import Any, NamedTuple

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
from trainers.config.experiment import ExperimentConfig, build_family, family_for
from trainers.config.sections import EvalTaskConfig, EvaluationConfig, LoggingConfig
from trainers.errors import RunError
from trainers.evaluation.contenders import Contender, baseline, learned_contender
from trainers.evaluation.evaluate import TaskResult, evaluate_task, evaluation_keys
from trainers.evaluation.task_list import resolve_tasks
from trainers.io.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from trainers.io.run_logger import RunLogger
from trainers.pipelines.train import initial_meta_state
from trainers.reporting.evaluation_report import log_to_wandb, results_json, write_report
from trainers.reporting.training_report import training_section

PyTree = Any


class LearnedCheckpoint(NamedTuple):
    """A meta-trained LSTM optimizer read from a checkpoint, with the config that trained it."""

    label: str
    config: ExperimentConfig
    meta_params: PyTree
    path: pathlib.Path
    step: int
    pretrained: bool = False  # a shipped bundle (`pretrained:NAME`), not a run's checkpoint


def checkpoint_folder(path: str | pathlib.Path) -> pathlib.Path:
    """A `ckpt-<step>` folder, or the newest one of a run folder."""
    path = pathlib.Path(path)
    if (path / "manifest.json").exists():
        return path
    newest = latest_checkpoint(path)
    if newest is None:
        raise CheckpointError(
            f"{path}: neither a checkpoint folder (no manifest.json) nor a run "
            f"folder with checkpoints (nothing in {path / 'checkpoints'})"
        )
    return newest


PRETRAINED = (
    "pretrained:"  # `--checkpoint pretrained:NAME`: a shipped bundle (meta_opt.pretrained_bundles)
)


def load_pretrained_checkpoint(name: str, label: str) -> LearnedCheckpoint:
    """A shipped pretrained optimizer (`meta_opt.pretrained_bundles`) with the config its card records.

    Raises:
      CheckpointError: an unknown or corrupt bundle, or a card without the training config.
    """
    from meta_opt.pretrained_bundles import (
        PRETRAINED_DIR,
        PretrainedError,
        load_pretrained,
        pretrained_card,
    )

    try:
        card = pretrained_card(name)
        lstm, meta_params = load_pretrained(name)
    except PretrainedError as err:
        raise CheckpointError(str(err)) from None
    if not isinstance(card.get("config"), dict):
        raise CheckpointError(f"pretrained optimizer {name!r}: its card records no training config")
    config = from_dict(
        ExperimentConfig, card["config"], source=f"{PRETRAINED_DIR / name}/card.json"
    )
    config = dataclasses.replace(
        config, meta_train=dataclasses.replace(config.meta_train, lstm=lstm)
    )
    return LearnedCheckpoint(
        label,
        config,
        meta_params,
        PRETRAINED_DIR / name,
        int(card.get("meta_steps", 0)),
        pretrained=True,
    )


def load_learned(path: str | pathlib.Path, label: str = "lstm") -> LearnedCheckpoint:
    """Reads the meta-parameters and training config of a checkpoint (or a run's newest one),
    or of a shipped pretrained optimizer named as `pretrained:NAME`.

    Raises:
      CheckpointError: naming the folder when it holds no usable checkpoint or config.
    """
    if str(path).startswith(PRETRAINED):
        return load_pretrained_checkpoint(str(path)[len(PRETRAINED) :], label)

    folder = checkpoint_folder(path)
    manifest = folder / "manifest.json"
    try:
        saved = json.loads(manifest.read_text())["metadata"]["config"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"{manifest}: no training config in the checkpoint metadata ({err!r})"
        ) from None
    config = from_dict(ExperimentConfig, saved, source=str(manifest))
    state, _ = load_checkpoint(folder, initial_meta_state(config, build_family(config)))
    step = int(state.step)
    return LearnedCheckpoint(label, config, state.meta_params, folder, step)


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
) -> tuple[list[TaskResult], dict]:
    """Evaluates every contender on every task; writes the report and logs it to W&B.

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
                )
            )
        written = write_report(
            results, folder, title=title, intro=intro, extra_sections=extra_sections
        )
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
    config = dataclasses.replace(config, evaluation=evaluation)
    task_configs = resolve_tasks(
        evaluation,
        config.task.name,
        config.task.options,
        config.meta_train.unroll.horizon,
        task_names,
        config.data_dir,
    )
    default_folder = (
        pathlib.Path(config.out_dir) / f"pretrained_{learned[0].path.name}"
        if learned[0].pretrained
        else learned[0].path.parents[2]
    )
    folder = pathlib.Path(out) if out else default_folder / "evaluate"
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
        {c.label: c.path.parents[1] for c in learned if not c.pretrained}, folder
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
    )
    return results, written
