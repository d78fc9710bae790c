"""The experiment config schema: what every run of the project reads from YAML.

Later sections (meta-training, geodesic targets, evaluation, logging) are added
here as nested frozen dataclasses; `trainers.config` needs no change for them.
What a config does with the task registry (`check_task`, `build_family`, ...) is in
`trainers.config.task_families`, re-exported here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from geodesic_targets.options import ConnectOptions, SpectrumOptions, SweepOptions, TargetOptions
from meta_opt.options import check_hparams
from trainers.config.ablation_section import AblationConfig, ArmVariant
from trainers.config.evaluation_section import EvaluationConfig
from trainers.config.loader import ConfigError, apply_overrides, attribute_override, load_config
from trainers.config.sections import LoggingConfig, MetaTrainConfig, OptimizerConfig, TaskConfig
from trainers.config.task_families import (
    build_family,
    check_task,
    extra_families,
    family_for,
    task_variation,
)
from trainers.config.typed import from_dict, to_dict

__all__ = [
    "AblationConfig",
    "ExperimentConfig",
    "GeodesicsConfig",
    "OptimizerConfig",
    "build_family",
    "check_optimizer",
    "check_task",
    "extra_families",
    "family_for",
    "load_experiment",
    "task_variation",
]


@dataclasses.dataclass(frozen=True)
class GeodesicsConfig:
    """`meta-opt geodesics`: string sampling, energy sweeps and target generation.

    Attributes:
      connect: string-sampling budgets (`geodesic_targets.ConnectOptions`).
      bead_optimizer: trains the beads.
      train_optimizer: trains the models that `connect` and `sweep` join.
      level: the level lambda of `geodesics connect`.
      sweep: levels, pairs and training budget of `geodesics sweep`.
      targets: instances, steps and horizon of `geodesics targets`.
      baseline: the optimizer whose trajectories `geodesics targets` cuts into pairs.
      spectrum: budgets of `geodesics spectrum` (Hessian spectra along trajectories and paths).
      spectrum_optimizers: the optimizers whose trajectories `geodesics spectrum`
        measures; empty: `baseline` alone.
    """

    connect: ConnectOptions = dataclasses.field(default_factory=ConnectOptions)
    bead_optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    train_optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    level: float = 0.5
    sweep: SweepOptions = dataclasses.field(default_factory=SweepOptions)
    targets: TargetOptions = dataclasses.field(default_factory=TargetOptions)
    baseline: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    spectrum: SpectrumOptions = dataclasses.field(default_factory=SpectrumOptions)
    spectrum_optimizers: tuple[OptimizerConfig, ...] = ()


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """One run: its name, seed, folders and task.

    Attributes:
      name: the run name (required); the run folder is `out_dir/name`.
      seed: the root seed every PRNG key of the run is derived from.
      out_dir: the folder that holds run folders.
      data_dir: where the data sets are (MNIST IDX, CIFAR-10); None means
        `$META_OPT_DATA` or the cache folder.
      task: the task section.
      geodesics: the `meta-opt geodesics` section.
      meta_train: the `meta-opt train` section.
      evaluation: the `meta-opt evaluate` section (tasks, seeds, baseline grids).
      logging: Weights & Biases project, entity, run name, tags and mode.
      ablation: the `meta-opt ablation` section (arms, meta-seeds, compute budget).
    """

    name: str
    seed: int = 0
    out_dir: str = "runs"
    data_dir: str | None = None
    task: TaskConfig = dataclasses.field(default_factory=TaskConfig)
    geodesics: GeodesicsConfig = dataclasses.field(default_factory=GeodesicsConfig)
    meta_train: MetaTrainConfig = dataclasses.field(default_factory=MetaTrainConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    logging: LoggingConfig = dataclasses.field(default_factory=LoggingConfig)
    ablation: AblationConfig = dataclasses.field(default_factory=AblationConfig)


def load_experiment(path: str | os.PathLike, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Loads an experiment config and checks its task section against the task registry.

    Args:
      path: the YAML file.
      overrides: "a.b=value" strings applied on top of the file, in order.

    Returns:
      The validated config, its supervision arm's target settings applied to
      `geodesics.targets` and `geodesics.connect` (`trainers.config.supervision`).

    Raises:
      ConfigError: as `load_config`, or naming `task.name` or
        `task.options.<key>` when the task registry rejects them (`check_task`).
    """
    config = load_config(ExperimentConfig, path, overrides)
    check_task(config.task, source=str(path), overrides=overrides)
    if task_variation(config):
        varied = dataclasses.replace(
            config.task, options={**config.task.options, **task_variation(config)}
        )
        check_task(
            varied,
            source=f"{path} (task.options with meta_train.task_variation)",
            overrides=overrides,
        )
    for i, extra in enumerate(config.meta_train.extra_tasks):
        at = f"meta_train.extra_tasks[{i}]"
        check_task(extra, source=str(path), overrides=overrides, at=at)  # its name first
        varied = dataclasses.replace(
            extra, options={**extra.options, **task_variation(config, extra)}
        )
        check_task(varied, source=str(path), overrides=overrides, at=at)
    for section in ("bead_optimizer", "train_optimizer", "baseline"):
        check_optimizer(
            getattr(config.geodesics, section),
            f"geodesics.{section}",
            source=str(path),
            overrides=overrides,
        )
    for i, optimizer in enumerate(config.geodesics.spectrum_optimizers):
        check_optimizer(
            optimizer, f"geodesics.spectrum_optimizers[{i}]", source=str(path), overrides=overrides
        )
    try:
        check_scoring(config, source=str(path))
    except ConfigError as err:
        raise attribute_override(err, overrides) from None
    for i, variant in enumerate(config.ablation.variants):
        at = f"ablation.variants[{i}].overrides"
        try:
            check_scoring(variant_config(config, variant), source=f"{path} ({at})")
        except ConfigError as err:
            raise attribute_override(
                ConfigError(str(err), key=at, source=str(path)), overrides
            ) from None
    if config.ablation.confirmatory and config.evaluation.seed in (None, config.seed):
        located = ConfigError(
            "a confirmatory ablation draws its held-out seeds from a fresh stream: set "
            f"evaluation.seed to a value other than the experiment seed {config.seed}",
            key="ablation.confirmatory",
            source=str(path),
        )
        raise attribute_override(located, overrides)
    from trainers.config.supervision import with_supervision  # it reads ExperimentConfig

    return with_supervision(config)  # the arm's target settings, so a saved config makes them


def check_scoring(config: ExperimentConfig, *, source: str = "") -> None:
    """Scoring meta-training on the validation split needs a validation split.

    Raises:
      ConfigError: at `meta_train.unroll.score_on`.
    """
    if config.meta_train.unroll.score_on == "validation" and not config.task.options.get(
        "validation_size"
    ):
        raise ConfigError(
            "scoring on the validation split needs task.options.validation_size > 0",
            key="meta_train.unroll.score_on",
            source=source,
        )


def variant_config(config: ExperimentConfig, variant: ArmVariant) -> ExperimentConfig:
    """`config` with a variant arm's overrides applied (checked like a loaded config).

    Raises:
      ConfigError: an override names an unknown key or a value of the wrong type.
    """
    data = apply_overrides(to_dict(config), variant.overrides)
    return from_dict(ExperimentConfig, data, source=f"ablation variant {variant.label!r}")


def check_optimizer(
    optimizer: OptimizerConfig, key: str, *, source: str = "", overrides: Sequence[str] = ()
) -> None:
    """Checks an optimizer section's name and hyperparameter names at load time (no JAX).

    Raises:
      ConfigError: at `<key>.name` or `<key>.hparams`, naming the problem.
    """
    try:
        check_hparams(optimizer.name, optimizer.hparams)
    except KeyError as err:
        located = ConfigError(err.args[0], key=f"{key}.name", source=source)
        raise attribute_override(located, overrides) from err
    except (TypeError, ValueError) as err:
        located = ConfigError(str(err), key=f"{key}.hparams", source=source)
        raise attribute_override(located, overrides) from err
