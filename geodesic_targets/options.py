"""The options of string sampling, energy sweeps and target generation.

Plain frozen dataclasses with value checks and no JAX, so that a config can be
loaded and checked without importing JAX (`meta-opt config`). The level schedule
(`LevelSchedule`) lives in `geodesic_targets.level_schedule` and is re-exported here.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from geodesic_targets.level_schedule import LevelSchedule

__all__ = [
    "ConnectOptions",
    "LevelSchedule",  # re-exported: benchmarks import it from here
    "Method",
    "ShortenOptions",
    "SpectrumOptions",
    "SweepOptions",
    "TargetOptions",
]

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
      shorten: relax every connected chain toward the geodesic (`geodesic_targets.shortening`).
      shortening: the budgets of that relaxation.
      align: before the search, permute theta_b's hidden units towards theta_a's (weight
        matching, `geodesic_targets.alignment`): the same function, fewer symmetric
        detours; the chain then ends at the aligned theta_b. Dense (MLP-style) chains only.
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
    shorten: bool = False
    shortening: ShortenOptions = dataclasses.field(default_factory=lambda: ShortenOptions())
    align: bool = False


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
    schedule: the level set each pair's path must stay in. "constant": Omega(F(theta_t))
      (string sampling); "linear": from F(theta_t) to F(theta_{t+T}) in arc length
      (string sampling); "teacher": point k at or below the teacher's best loss after
      k steps, floored at the end's loss (the teacher's own path, shortened with one
      level per point; target k is the path's point k).
    timing: where the T target points sit on a path of a fraction schedule.
      "arc_length": equally spaced; "schedule": target k is the first point of the path
      whose loss reaches the teacher's level k (the last is theta_{t+T}). Not used by
      the teacher schedule, whose sets record "index".
    path: what the targets lie on. "level_set": a path searched in the level set
      of `schedule` (the geodesic estimates); "teacher": the teacher's own iterates
      theta_{t+1} ... theta_{t+T} (no search; `timing` does not apply); "chord": the
      straight segment, at `timing` (no search). The last two are the ablation's
      controls (`meta_train.supervision`) and take the constant schedule only.
    """

    num_instances: int = 4
    num_steps: int = 100
    horizon: int = 20
    level_tolerance: float = 1e-5
    schedule: Literal["constant", "linear", "teacher"] = "constant"
    timing: Literal["arc_length", "schedule"] = "arc_length"
    path: Literal["level_set", "teacher", "chord"] = "level_set"

    def __post_init__(self):
        if self.path not in ("level_set", "teacher", "chord"):
            raise ValueError(f"path must be level_set, teacher or chord: {self}")
        if self.path != "level_set" and self.schedule != "constant":
            raise ValueError(
                f"a {self.path} path is not searched, so it takes no level schedule "
                f"(schedule {self.schedule!r}): set schedule to constant"
            )
        if (
            min(self.num_instances, self.num_steps, self.horizon) < 1
            or self.horizon > self.num_steps
        ):
            raise ValueError(
                f"need num_instances, num_steps >= 1 and 1 <= horizon <= num_steps: {self}"
            )
        if self.schedule not in ("constant", "linear", "teacher") or self.timing not in (
            "arc_length",
            "schedule",
        ):
            raise ValueError(
                f"schedule must be constant, linear or teacher and timing arc_length or "
                f"schedule: {self}"
            )


@dataclasses.dataclass(frozen=True)
class ShortenOptions:
    """Budgets and convergence criterion of path shortening (`geodesic_targets.shortening`).

    Attributes:
      num_points: points of the relaxed path, ends included (a path given with a
        level per point keeps its own number of points).
      rounds: the most rounds (each: the exact energy step under linearized level
        constraints, then projection back below alpha times the level).
      tolerance: converged once the path length changed by at most this fraction in
        each of the last `window` rounds and every point is at or below its level.
      window: rounds the length must stay still for.
      alpha: points are projected to at most alpha * level (slack for the segments
        between them).
      projection_steps: Gauss-Newton steps of one projection onto the level set.
      check_every: rounds between certifications; the converged path if it
        certifies, else the shortest certified path seen, is the result.
      num_grid: points of t in [0, 1] on which every segment is certified.
      min_damping: the smallest fraction of the energy step a path whose length
        oscillates is left with (each change of sign of the length's change halves the
        step, down to this; `geodesic_targets.shortening_progress.record_round`). At the
        default 1/16 some paths cycle at a fixed amplitude above the tolerance until the
        round cap (RESULTS.md, the decisive T = 100 ablation); a smaller floor lets the
        step, and the cycle, shrink further.
      pull: the fraction of the way to the neighbours' midpoint a point moved per round in
        the former fixed-rounds relaxation (`geodesic_targets.midpoint_relaxation`, which
        the comparison benchmark runs with it). Converged shortening does not read it; it
        stays so that configs and cards written before 2026-12-02 load.
    """

    num_points: int = 33
    rounds: int = 100
    tolerance: float = 1e-5
    window: int = 3
    alpha: float = 0.97
    projection_steps: int = 8
    check_every: int = 25
    num_grid: int = 33
    min_damping: float = 1 / 16
    pull: float = 0.5

    def __post_init__(self):
        if self.num_points < 3 or self.rounds < 1 or self.check_every < 1 or self.num_grid < 2:
            raise ValueError(
                f"need num_points >= 3, rounds >= 1, check_every >= 1, num_grid >= 2: {self}"
            )
        if (
            not 0 < self.alpha <= 1
            or self.projection_steps < 1
            or self.window < 1
            or self.tolerance <= 0
        ):
            raise ValueError(
                f"need 0 < alpha <= 1, projection_steps >= 1, window >= 1, tolerance > 0: {self}"
            )
        if not 0 < self.pull <= 1 or not 0 < self.min_damping <= 1:
            raise ValueError(f"need 0 < pull <= 1 and 0 < min_damping <= 1: {self}")


@dataclasses.dataclass(frozen=True)
class SpectrumOptions:
    """Budgets of `meta-opt geodesics spectrum` (`geodesic_targets.landscape`).

    Attributes:
      num_iterations: Lanczos iterations per probe (the index's resolution is about
        1 / num_iterations; at the number of parameters it is an exact count).
      num_probes: stochastic Lanczos quadrature probes per point.
      epsilon: eigenvalues below -epsilon count as negative (the index).
      relative_epsilon: epsilon is a fraction of the point's largest |eigenvalue| (the
        index then does not change when the loss is scaled), else an absolute value.
      chunk: points measured per vmapped call (memory: chunk x probes x iterations x parameters).
      trajectory_steps: steps of every optimizer trajectory measured.
      trajectory_points: points measured along each trajectory (start and end included).
      trajectory_seeds: independent runs per optimizer.
      path_pairs: pairs of models trained to `geodesics.level` and connected; the beads
        and each segment's highest point are measured (0: no paths).
    """

    num_iterations: int = 30
    num_probes: int = 8
    epsilon: float = 1e-3
    relative_epsilon: bool = True
    chunk: int = 8
    trajectory_steps: int = 200
    trajectory_points: int = 11
    trajectory_seeds: int = 2
    path_pairs: int = 2

    def __post_init__(self):
        if (
            min(
                self.num_iterations,
                self.num_probes,
                self.chunk,
                self.trajectory_steps,
                self.trajectory_seeds,
            )
            < 1
        ):
            raise ValueError(
                f"num_iterations, num_probes, chunk, trajectory_steps and trajectory_seeds "
                f"must be >= 1: {self}"
            )
        if self.trajectory_points < 2 or self.path_pairs < 0 or self.epsilon < 0:
            raise ValueError(
                f"need trajectory_points >= 2, path_pairs >= 0 and epsilon >= 0: {self}"
            )
