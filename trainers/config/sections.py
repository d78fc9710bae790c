"""The sections of an experiment config: task, meta-training, unrolls, logging.

Frozen dataclasses with value checks and no JAX or wandb, so that loading and
checking a config stays light (`meta-opt config`). The evaluation section is in
`trainers.config.evaluation_section` (re-exported here).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Literal

from meta_opt.architectures import LearnedOptimizerConfig
from meta_opt.lstm_v1_config import LSTMv1Config
from trainers.config.arms import ARM_NAMES, ARMS
from trainers.config.evaluation_section import EvalTaskConfig, EvaluationConfig

__all__ = [
    "SUPERVISION_ARMS",
    "EstimatorOptions",
    "EvalTaskConfig",
    "EvaluationConfig",
    "LoggingConfig",
    "LossKind",
    "MetaTrainConfig",
    "OuterOptimizerConfig",
    "Supervision",
    "TaskConfig",
    "UnrollOptions",
]

LossKind = Literal["mean", "log", "normalized"]
SUPERVISION_ARMS = ARM_NAMES  # the rows of trainers.config.arms
Supervision = Literal[ARM_NAMES]  # type: ignore[valid-type]  (a Literal of the table's names)


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    """Which task family the inner problems come from.

    Attributes:
      name: a name from `tasks.list_tasks()`.
      options: keyword options of the family, forwarded as
        `tasks.get_family(name, **options)`; type-checked against the family's
        options dataclass (`tasks.options_type(name)`).
        A plain dict, to be treated as read-only.
    """

    name: str = "digits_mlp"
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class UnrollOptions:
    """Attributes:
    horizon: H, inner steps before an instance is reset to fresh params.
    unroll_length: U, inner steps per meta-gradient (truncation).
    stagger: start instances at different points of the horizon, so they do not
      all reset in the same meta-step.
    second_order: differentiate through the inner gradients (default: constants).
    loss_kind: "mean" inner loss, mean "log" loss, or loss "normalized" by the
      loss at the unroll's start.
    score_on: the minibatches the meta-loss scores each updated point on: "train"
      (the training data, Andrychowicz et al.) or "validation" (the task's validation
      split, `task.options.validation_size > 0`: rewards generalization).
    min_horizon: if set, every restarted instance runs for a horizon drawn
      log-uniformly from [min_horizon, horizon] (a multiple of U) instead of H, so that
      meta-training sees runs of many lengths; validation keeps H.
    """

    horizon: int = 100
    unroll_length: int = 20
    stagger: bool = True
    second_order: bool = False
    loss_kind: LossKind = "mean"
    score_on: Literal["train", "validation"] = "train"
    min_horizon: int | None = None

    def __post_init__(self):
        if not 1 <= self.unroll_length <= self.horizon or self.horizon % self.unroll_length:
            raise ValueError(
                f"need 1 <= unroll_length <= horizon with horizon a multiple of "
                f"unroll_length (resets happen between unrolls), got {self}"
            )
        if self.loss_kind not in ("mean", "log", "normalized"):
            raise ValueError(f"loss_kind must be mean, log or normalized, got {self.loss_kind!r}")
        if self.score_on not in ("train", "validation"):
            raise ValueError(f"score_on must be train or validation, got {self.score_on!r}")
        if self.min_horizon is not None and not (
            self.unroll_length <= self.min_horizon <= self.horizon
            and self.min_horizon % self.unroll_length == 0
        ):
            raise ValueError(
                f"min_horizon must be a multiple of unroll_length between it and horizon, got {self}"
            )


@dataclasses.dataclass(frozen=True)
class EstimatorOptions:
    """How unrolls become meta-gradients of the inner-loss term (`trainers.core.estimators`).

    Attributes:
      name: "truncated" backprop through each unroll of U steps (Andrychowicz et al.;
        biased toward short horizons), "es" (antithetic truncated evolution strategies:
        no backward pass, biased like truncated backprop) or "pes" (persistent ES, Vicol
        et al. 2021: unbiased over the horizon, higher variance). ES and PES unroll every
        instance twice (theta +- epsilon); the imitation term is always backpropagated.
      sigma: standard deviation of ES/PES perturbations of each meta-parameter.
    """

    name: Literal["truncated", "es", "pes"] = "truncated"
    sigma: float = 0.01

    def __post_init__(self):
        if self.name not in ("truncated", "es", "pes"):
            raise ValueError(f"estimator name must be truncated, es or pes, got {self.name!r}")
        if not self.sigma > 0:
            raise ValueError(f"estimator sigma must be positive, got {self.sigma}")

    @property
    def antithetic(self) -> bool:
        """ES or PES: two perturbed unrolls per instance, no backward pass through them."""
        return self.name != "truncated"


@dataclasses.dataclass(frozen=True)
class OuterOptimizerConfig:
    """Adam with global-norm clipping on the meta-parameters.

    Attributes:
      learning_rate: Adam's step size.
      clip_norm: the meta-gradient's global norm is clipped to this.
    """

    learning_rate: float = 1e-3
    clip_norm: float = 1.0


@dataclasses.dataclass(frozen=True)
class MetaTrainConfig:
    """Meta-training of the LSTM optimizer.

    Attributes:
      num_meta_steps: outer steps.
      num_instances: N task instances unrolled at once (a multiple of the device count).
      unroll: horizon H, unroll length U, staggering, second derivatives, loss kind.
      lstm: the learned optimizer: an architecture of `meta_opt.architectures`, chosen by
        its `kind` (lstm_v1, the default, or lstm_v2; data without `kind` is read as
        before the registry: non-empty `inputs` means lstm_v2).
      outer: the outer optimizer.
      loss_weight: weight of the inner-loss meta-objective (0: imitation only).
      imitation_weight: beta, weight of the geodesic imitation loss (0: loss only).
      imitation_batch: target pairs per meta-step.
      supervision: what the imitation loss follows, an arm of `trainers.config.arms`
        (none, teacher, chord, endpoint, geodesic, geodesic_schedule, on_policy; the
        table says what each one's targets are). A loaded config carries its arm's
        target settings in `geodesics.targets` and `geodesics.connect` (resolved by
        `load_experiment`). None: the targets exactly as those sections say.
      targets: a `.npz` from `meta-opt geodesics targets`; None with beta > 0 means
        generate them first with the `geodesics.targets` settings.
      checkpoint_every: meta-steps between checkpoints (the last step is always saved).
      distributed: call `jax.distributed.initialize()` (multi-host jobs).
      validate_every: meta-steps between validations (0: never). The validation
        meta-loss is the mean minibatch loss of H-step runs from fresh parameters on
        `validation_seeds` fixed instances that training never draws: the loss-only
        objective over a whole horizon, comparable across runs with other objectives.
      validation_seeds: instances of each validation.
      task_variation: task options set for meta-training only (its instances, targets
        and validations), e.g. `{input_scale_range: [0.5, 2.0], permute_labels: true}`
        so that meta-training instances differ; evaluation uses `task.options` as they are.
        null (the default): the task family's own (`tasks.meta_training_variation`: input
        scaling and label permutation for classifiers, nothing elsewhere); `{}`: none.
      estimator: the meta-gradient estimator of the inner-loss term (truncated, es, pes).
      extra_tasks: more task families meta-trained beside `task` (other data sets, widths,
        depths, activations): N instances of each, unrolled alike; the inner-loss term
        is the mean over the tasks. Each gets its own family's default task variation
        (null `task_variation`) or `task_variation`'s options it has. Validation,
        targets and evaluation use `task` alone.
    """

    num_meta_steps: int = 200
    num_instances: int = 8
    unroll: UnrollOptions = dataclasses.field(default_factory=UnrollOptions)
    lstm: LearnedOptimizerConfig = dataclasses.field(default_factory=LSTMv1Config)
    outer: OuterOptimizerConfig = dataclasses.field(default_factory=OuterOptimizerConfig)
    loss_weight: float = 1.0
    imitation_weight: float = 0.0
    imitation_batch: int = 4
    supervision: Supervision | None = None
    targets: str | None = None
    checkpoint_every: int = 10
    distributed: bool = False
    validate_every: int = 0
    validation_seeds: int = 8
    task_variation: Mapping[str, Any] | None = None
    estimator: EstimatorOptions = dataclasses.field(default_factory=EstimatorOptions)
    extra_tasks: tuple[TaskConfig, ...] = ()

    def __post_init__(self):
        if self.num_meta_steps < 1 or self.num_instances < 1 or self.checkpoint_every < 1:
            raise ValueError("num_meta_steps, num_instances and checkpoint_every must be >= 1")
        if self.validate_every < 0 or self.validation_seeds < 1:
            raise ValueError("validate_every must be >= 0 and validation_seeds >= 1")
        if self.supervision is not None and self.supervision not in SUPERVISION_ARMS:
            raise ValueError(
                f"supervision must be one of {', '.join(SUPERVISION_ARMS)}, "
                f"got {self.supervision!r}"
            )
        if self.supervision is not None and ARMS[self.supervision].imitates != (
            self.imitation_weight > 0
        ):
            raise ValueError(
                f"supervision {self.supervision!r} with imitation_weight "
                f"{self.imitation_weight}: an arm without imitation ('none') needs "
                "imitation_weight 0, every other arm > 0"
            )


@dataclasses.dataclass(frozen=True)
class LoggingConfig:
    """Where a run is logged; `mode`: "auto" (`resolve_mode`), "online", "offline", "disabled" (jsonl only)."""

    project: str = "geodesic-meta-opt"
    entity: str | None = None
    run_name: str | None = None
    tags: tuple[str, ...] = ()
    mode: Literal["auto", "online", "offline", "disabled"] = "auto"


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
