"""The experiment config schema: what every run of the project reads from YAML.

Later sections (meta-training, geodesic targets, evaluation, logging) are added
here as nested frozen dataclasses; `trainers.config` needs no change for them.
What a config does with the task registry (`check_task`, `build_family`, ...) is in
`trainers.config.task_families`, re-exported here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from geodesic_targets.options import ConnectOptions, SpectrumOptions, SweepOptions, TargetOptions
from meta_opt.options import check_hparams
from trainers.config.arms import ARMS
from trainers.config.evaluation_section import EvaluationConfig
from trainers.config.loader import ConfigError, attribute_override, load_config
from trainers.config.sections import SUPERVISION_ARMS, LoggingConfig, MetaTrainConfig, TaskConfig
from trainers.config.task_families import (
    build_family,
    check_task,
    extra_families,
    family_for,
    task_variation,
)

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


def _adam(learning_rate: float) -> Callable[[], dict[str, Any]]:
    return lambda: {"learning_rate": learning_rate}


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """An optimizer by name, built with `meta_opt.get_optimizer(name, **hparams)`."""

    name: str = "adam"
    hparams: Mapping[str, Any] = dataclasses.field(default_factory=_adam(1e-2))

    def build(self):
        """The optax transformation this section names (imports JAX)."""
        from meta_opt.registry import get_optimizer

        return get_optimizer(self.name, **self.hparams)


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
class AblationConfig:
    """`meta-opt ablation`: supervision arms x meta-seeds at a matched inner-step budget.

    Attributes:
      arms: `meta_train.supervision` arms to train (each with the teacher `geodesics.baseline`).
      meta_seeds: K meta-training runs per arm (seeds seed, seed + 1, ...), trained together.
      inner_step_budget: inner steps each run computes, imitation unrolls included; an
        arm takes budget // (its inner steps per meta-step) meta-steps. 0: every arm takes
        `meta_train.num_meta_steps` (compute not matched; the report says so).
      imitation_weight: beta of every supervised arm.
      extra_teachers: other teachers (e.g. not the tuned winner); each runs `extra_teacher_arms` again.
      extra_teacher_arms: the supervised arms repeated with every extra teacher.
      curve_points: validations per run, evenly spaced in compute (plus one before training).
      comparisons: paired comparisons "a:b" of the report (arms absent from `arms` are skipped),
        Holm-adjusted together (per metric).
      primary: the comparisons "a:b" the ablation is run to decide, declared before it runs;
        reported first, Holm-adjusted among themselves, each with the smallest effect it
        detects at 80% power.
      equivalence_margin: m > 0 makes a comparison "equivalent" when two one-sided tests put
        |a − b| below m x (b's mean); 0: no margin (a difference inside the noise stays
        "inconclusive").
      negative_control: a pair "a:b" of arms that should not differ (e.g. geodesic:chord where
        the level-set paths are chords); its paired spread is reported as the noise floor.
      confirmatory: the run tests settings chosen on other runs: it must draw its held-out
        seeds from a fresh stream (`evaluation.seed` set, not the experiment seed).
    """

    arms: tuple[str, ...] = (
        "none",
        "teacher",
        "chord",
        "endpoint",
        "geodesic",
        "geodesic_schedule",
        "on_policy",
    )
    meta_seeds: int = 5
    inner_step_budget: int = 0
    imitation_weight: float = 1.0
    extra_teachers: tuple[OptimizerConfig, ...] = ()
    extra_teacher_arms: tuple[str, ...] = ("teacher", "geodesic_schedule")
    curve_points: int = 10
    comparisons: tuple[str, ...] = (
        "geodesic:chord",
        "geodesic:teacher",
        "geodesic:none",
        "geodesic_schedule:chord",
        "geodesic_schedule:teacher",
        "geodesic_schedule:none",
        "chord:none",
        "teacher:none",
        "endpoint:chord",
        "endpoint:teacher",
        "endpoint:none",
        "on_policy:teacher",
        "on_policy:none",
    )
    primary: tuple[str, ...] = ()
    equivalence_margin: float = 0.05
    negative_control: str | None = None
    confirmatory: bool = False

    def __post_init__(self):
        unknown = sorted(set(self.arms + self.extra_teacher_arms) - set(SUPERVISION_ARMS))
        if unknown or not self.arms:
            raise ValueError(
                f"unknown or no arm(s) {unknown}; known: {', '.join(SUPERVISION_ARMS)}"
            )
        if any(not ARMS[arm].imitates for arm in self.extra_teacher_arms):
            raise ValueError("extra_teacher_arms: an arm without imitation ('none') has no teacher")
        if self.meta_seeds < 2 or self.inner_step_budget < 0 or self.curve_points < 1:
            raise ValueError(
                f"need meta_seeds >= 2 (for a standard error), inner_step_budget >= 0 "
                f"and curve_points >= 1: {self}"
            )
        if self.imitation_weight <= 0:
            raise ValueError(f"imitation_weight must be > 0, got {self.imitation_weight}")
        control = () if self.negative_control is None else (self.negative_control,)
        for pair in self.comparisons + self.primary + control:
            if pair.count(":") != 1 or any(a not in SUPERVISION_ARMS for a in pair.split(":")):
                raise ValueError(
                    f"comparison {pair!r} is not 'arm:arm' with arms from {SUPERVISION_ARMS}"
                )
        missing = sorted(
            {a for pair in self.primary + control for a in pair.split(":")} - set(self.arms)
        )
        if missing:
            raise ValueError(f"primary and negative_control name arms not in `arms`: {missing}")
        if self.equivalence_margin < 0:
            raise ValueError(f"equivalence_margin must be >= 0, got {self.equivalence_margin}")


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
    if config.meta_train.unroll.score_on == "validation" and not config.task.options.get(
        "validation_size"
    ):
        located = ConfigError(
            "scoring on the validation split needs task.options.validation_size > 0",
            key="meta_train.unroll.score_on",
            source=str(path),
        )
        raise attribute_override(located, overrides)
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
