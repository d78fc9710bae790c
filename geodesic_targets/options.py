"""The options of string sampling, energy sweeps and target generation.

Plain frozen dataclasses with value checks and no JAX, so that a config can be
loaded and checked without importing JAX (`meta-opt config`).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

Method = Literal["greedy", "constrained"]


@dataclasses.dataclass(frozen=True)
class ConnectOptions:
    """Budgets and choices of a string search.

    Attributes:
      method: "greedy" (Algorithm 1) or "constrained" (section 6).
      insert_at: new greedy beads start at the segment's loss maximum ("argmax")
        or its midpoint ("midpoint"); constrained beads always start at the midpoint.
      alpha: beads are trained to alpha * threshold (the paper: alpha < 1 aids convergence).
      num_grid: points of t in [0, 1] on which every segment is certified.
      max_depth: recursion levels before giving up.
      max_beads: inserted beads before giving up.
      max_steps: training steps of one bead before giving up.
      pull: pull toward the neighbours' midpoint (constrained only).
      batched: train all beads of a level in one vmapped call (False: one at a time,
        for comparison).
    """

    method: Method = "greedy"
    insert_at: Literal["argmax", "midpoint"] = "argmax"
    alpha: float = 0.95
    num_grid: int = 33
    max_depth: int = 10
    max_beads: int = 64
    max_steps: int = 500
    pull: float = 1e-2
    batched: bool = True


@dataclasses.dataclass(frozen=True)
class SweepOptions:
    """Attributes:
    levels: the energy levels lambda (any order; swept from high to low).
    num_pairs: independent pairs of models per level.
    max_train_steps: steps allowed to bring a model from one level to the next.
    """

    levels: tuple[float, ...] = (0.5, 0.3, 0.2)
    num_pairs: int = 4
    max_train_steps: int = 3000

    def __post_init__(self):
        if not self.levels or min(self.levels) <= 0 or self.num_pairs < 1:
            raise ValueError(f"levels must be positive and num_pairs >= 1, got {self}")


@dataclasses.dataclass(frozen=True)
class TargetOptions:
    """Attributes:
    num_instances: task instances whose trajectories are cut into pairs.
    num_steps: baseline steps per trajectory.
    horizon: T, the steps between the ends of a pair and the number of target points.
    level_tolerance: relative slack on lambda = F(theta_t), so that the start itself,
      evaluated in another compiled function, is not rejected for a rounding error.
    """

    num_instances: int = 4
    num_steps: int = 100
    horizon: int = 20
    level_tolerance: float = 1e-5

    def __post_init__(self):
        if min(self.num_instances, self.num_steps, self.horizon) < 1 or self.horizon > self.num_steps:
            raise ValueError(f"need num_instances, num_steps >= 1 and 1 <= horizon <= num_steps: {self}")
