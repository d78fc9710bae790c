"""The `meta_train` section of an experiment config (`meta-opt train`)."""

from __future__ import annotations

import dataclasses
from typing import Optional

from meta_opt.lstm_optimizer import LSTMOptimizer
from trainers.unroll import UnrollOptions


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
      lstm: the learned optimizer's architecture and preprocessing.
      outer: the outer optimizer.
      loss_weight: weight of the inner-loss meta-objective (0: imitation only).
      imitation_weight: beta, weight of the geodesic imitation loss (0: loss only).
      imitation_batch: target pairs per meta-step.
      targets: a `.npz` from `meta-opt geodesics targets`; None with beta > 0 means
        generate them first with the `geodesics.targets` settings.
      checkpoint_every: meta-steps between checkpoints (the last step is always saved).
      distributed: call `jax.distributed.initialize()` (multi-host jobs).
      validate_every: meta-steps between validations (0: never). The validation
        meta-loss is the mean minibatch loss of H-step runs from fresh parameters on
        `validation_seeds` fixed instances that training never draws: the loss-only
        objective over a whole horizon, comparable across runs with other objectives.
      validation_seeds: instances of each validation.
    """

    num_meta_steps: int = 200
    num_instances: int = 8
    unroll: UnrollOptions = dataclasses.field(default_factory=UnrollOptions)
    lstm: LSTMOptimizer = dataclasses.field(default_factory=LSTMOptimizer)
    outer: OuterOptimizerConfig = dataclasses.field(default_factory=OuterOptimizerConfig)
    loss_weight: float = 1.0
    imitation_weight: float = 0.0
    imitation_batch: int = 4
    targets: Optional[str] = None
    checkpoint_every: int = 10
    distributed: bool = False
    validate_every: int = 0
    validation_seeds: int = 8

    def __post_init__(self):
        if self.num_meta_steps < 1 or self.num_instances < 1 or self.checkpoint_every < 1:
            raise ValueError("num_meta_steps, num_instances and checkpoint_every must be >= 1")
        if self.validate_every < 0 or self.validation_seeds < 1:
            raise ValueError("validate_every must be >= 0 and validation_seeds >= 1")
