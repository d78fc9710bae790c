"""The `evaluation` section of an experiment config: the report's tasks, seeds and baselines.

`EvaluationConfig` (with its task rows, `EvalTaskConfig`, and the baselines it may name)
is apart from the meta-training sections in `trainers.config.sections` because only
`meta-opt evaluate` and the reports read it. Frozen dataclasses with value checks and
no JAX or wandb, so that loading and checking a config stays light (`meta-opt config`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from meta_opt.options import BASELINES as _BASELINE_ROWS

BASELINES = tuple(_BASELINE_ROWS)  # names, from `meta_opt.options.BASELINE_TABLE`


def _log_grid(low_exponent: int, high_exponent: int) -> tuple[float, ...]:
    """1, 3 per decade: 10^low, 3 10^low, ..., 10^high."""
    return tuple(
        m * 10.0**e
        for e in range(low_exponent, high_exponent + 1)
        for m in (1.0, 3.0)
        if m * 10.0**e <= 10.0**high_exponent
    )


@dataclasses.dataclass(frozen=True)
class EvalTaskConfig:
    """One row group of the report: a task family with options and a step count.

    Attributes:
      name: a name from `tasks.list_tasks()`.
      options: the family's options (None fields of the training task are filled in
        by `trainers.evaluation.evaluate.resolve_tasks`).
      steps: inner steps per run; None = `evaluation.steps`.
      label: the name in tables and plots; "" = `name`.
    """

    name: str = "digits_mlp"
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    steps: int | None = None
    label: str = ""


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """Learned optimizers against tuned baselines on held-out seeds.

    Attributes:
      tasks: what to evaluate on; empty = the training task.
      steps: inner steps per run; None = the meta-training horizon H.
      seeds: held-out seeds per optimizer and task (the reported runs).
      tuning_seeds: separate seeds on which each baseline's grid is searched.
      seed: root of the evaluation keys; None = the experiment seed. Evaluation
        keys are folded with their own tag, so they never coincide with training keys.
      baselines: names from `meta_opt.list_optimizers()` (momentum is SGD + 0.9 momentum).
      learning_rates: the log grid every baseline's learning rate is chosen from.
      dampings: ESGD's and Jacobi's damping grid (searched jointly with the learning rate).
      generalization: add the Andrychowicz et al. variants of the training task
        (2x and 10x steps, wider, deeper, ReLU) and real MNIST when present.
      record_points: about this many training-loss measurements per run (curves, steps to target).
      parallel_runs: runs computed at once in one compiled call (0: every run of a grid at
        once); a smaller number bounds memory on large tasks (a conv net's tuning grid on
        4,096 evaluation images needs several GB at once) at no change in the results.
      target_loss: the loss whose first crossing is "steps to target"; None = the
        worst tuned baseline's mean final loss on each task (every baseline gets there).
      speedup_horizon: Adam's whole learning-rate grid also runs this many times each task's
        steps on the held-out seeds, the reference of speed-ups over Adam
        (`trainers.evaluation.evaluate.AdamReference`); 0: none (speed-ups are then measured
        on the tuned Adam run of the task's length and cannot exceed 1).
    """

    tasks: tuple[EvalTaskConfig, ...] = ()
    steps: int | None = None
    seeds: int = 16
    tuning_seeds: int = 4
    seed: int | None = None
    baselines: tuple[str, ...] = ("adam", "rmsprop", "momentum", "esgd")
    learning_rates: tuple[float, ...] = _log_grid(-4, 1)
    dampings: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    generalization: bool = False
    record_points: int = 50
    target_loss: float | None = None
    parallel_runs: int = 0
    speedup_horizon: int = 0

    def __post_init__(self):
        if self.speedup_horizon < 0:
            raise ValueError(f"speedup_horizon must be >= 0 (0: none), got {self.speedup_horizon}")
        if self.parallel_runs < 0:
            raise ValueError(
                f"parallel_runs must be >= 0 (0: all at once), got {self.parallel_runs}"
            )
        if self.seeds < 2 or self.tuning_seeds < 1:
            raise ValueError(
                f"need seeds >= 2 (for a standard error) and tuning_seeds >= 1, "
                f"got {self.seeds}, {self.tuning_seeds}"
            )
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        unknown = sorted(set(self.baselines) - set(BASELINES))
        if unknown:
            raise ValueError(f"unknown baseline(s) {unknown}; known: {', '.join(BASELINES)}")
        if not self.learning_rates or min(self.learning_rates) <= 0:
            raise ValueError("learning_rates must be a non-empty list of positive numbers")
        if not self.dampings or min(self.dampings) <= 0:
            raise ValueError("dampings must be a non-empty list of positive numbers")

    @property
    def grids(self) -> dict[str, tuple[float, ...]]:
        """Each tunable hyperparameter's values (a baseline searches the product of its `tuned`)."""
        return {"learning_rate": self.learning_rates, "damping": self.dampings}
