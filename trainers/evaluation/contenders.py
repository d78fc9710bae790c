"""The optimizers of a comparison and how baselines are tuned.

Every baseline's learning rate (and ESGD's / Jacobi's damping) is the best of a
log grid on separate *tuning* seeds, for the same number of steps as the reported
runs; the chosen values are reported, with a flag when one sits at the edge of
its grid. A learned optimizer is not tuned.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import meta_opt
from meta_opt.architectures import LearnedOptimizerConfig
from meta_opt.options import BASELINES
from tasks.base import TaskFamily
from trainers.core.trajectories import BuildOptimizer, run_grid
from trainers.evaluation.statistics import tuning_score


@dataclasses.dataclass(frozen=True)
class Contender:
    """An optimizer in the comparison.

    Attributes:
      label: its name in tables and plots.
      build: hyperparameters -> optimizer (traced; see `trainers.core.trajectories`).
      grid: tuned hyperparameter -> values, all of length G (the settings tried);
        empty for a learned optimizer, which is not tuned.
      learned: a meta-trained optimizer (not a baseline).
    """

    label: str
    build: BuildOptimizer
    grid: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    learned: bool = False


def baseline(
    name: str,
    learning_rates: Sequence[float],
    dampings: Sequence[float] = (1e-4,),
    num_steps: int | None = None,
) -> Contender:
    """A baseline from `meta_opt.get_optimizer` with its tuning grid.

    The grid is the product of the values of the hyperparameters its row of
    `meta_opt.options.BASELINE_TABLE` tunes (ESGD and Jacobi: learning rate x damping;
    the others: the learning rate). "momentum" is SGD with heavy-ball momentum 0.9;
    a baseline whose schedule needs the run's length ("adam_cosine") gets `num_steps`
    as its `decay_steps` (required for it); the rest use optax's defaults.
    """
    row = BASELINES[name]
    values = {"learning_rate": learning_rates, "damping": dampings}
    settings = list(itertools.product(*(values[h] for h in row.tuned)))
    grid = {h: np.array([s[i] for s in settings], np.float32) for i, h in enumerate(row.tuned)}
    fixed: dict[str, Any] = {}
    if row.needs_run_length:
        if num_steps is None:
            raise ValueError(f"baseline {name!r} needs the run's length (num_steps)")
        fixed["decay_steps"] = num_steps
    return Contender(name, lambda hparams: meta_opt.get_optimizer(name, **hparams, **fixed), grid)


def learned_contender(label: str, lstm: LearnedOptimizerConfig, meta_params: Any) -> Contender:
    """A meta-trained LSTM optimizer (its weights are constants of the traced run)."""
    return Contender(label, lambda hparams: lstm.transformation(meta_params), {}, learned=True)


@dataclasses.dataclass(frozen=True)
class Tuning:
    """A grid search: every setting's mean final training loss on the tuning seeds.

    Attributes:
      grid: hyperparameter -> the G values tried.
      scores: mean final training loss per setting, [G] (inf where a seed diverged).
      best: the index of the chosen setting (the first of equal scores).
    """

    grid: Mapping[str, np.ndarray]
    scores: np.ndarray
    best: int

    @property
    def chosen(self) -> dict[str, float]:
        return {name: float(values[self.best]) for name, values in self.grid.items()}

    def at_edge(self) -> list[str]:
        """The hyperparameters whose chosen value is the smallest or largest of a grid of 2+ values."""
        return [
            name
            for name, values in self.grid.items()
            if len(set(values.tolist())) > 1 and values[self.best] in (values.min(), values.max())
        ]


def grid_runs(
    family: TaskFamily,
    contender: Contender,
    keys: jax.Array,
    num_steps: int,
    record_points: int = 50,
    parallel_runs: int = 0,
):
    """Every setting of the contender's grid run on every key (`run_grid`): `Trajectories` [G, K]."""
    grid = {k: jnp.asarray(v) for k, v in contender.grid.items()}
    return run_grid(family, contender.build, grid, keys, num_steps, record_points, parallel_runs)


def tune(
    family: TaskFamily,
    contender: Contender,
    keys: jax.Array,
    num_steps: int,
    record_points: int = 50,
    parallel_runs: int = 0,
) -> Tuning:
    """Runs the contender's whole grid on the tuning seeds and picks the lowest mean final loss."""
    runs = grid_runs(family, contender, keys, num_steps, record_points, parallel_runs)
    scores = tuning_score(runs.final_losses)
    return Tuning(
        {k: np.asarray(v) for k, v in contender.grid.items()}, scores, int(np.argmin(scores))
    )
