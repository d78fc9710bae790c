"""A set of certified supervision targets: one path per teacher pair, stacked along a leading axis.

`geodesic_targets.targets.generate_targets` builds one; `TargetSet.save` / `load`
keep it in a `.npz` file (no pickle). Each pair carries its geometry (lengths,
chord deviation, the shortening's convergence) and each target point its level
and certifying loss, so a set can be checked against its schedule on its own.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np

from common.errors import UserError
from common.pytree import PyTree
from geodesic_targets.paths import load_path, save_path

# Fields added after the first target sets were written, with the values those sets had.
_DEFAULTS = {"schedule": "constant", "timing": "arc_length", "path": "level_set", "num_dropped": 0}
_PER_PAIR = (
    "unshortened_lengths",
    "chord_deviations",
    "chord_break_fractions",
    "num_beads",
    "converged",
    "shortening_rounds",
    "convergence_criteria",
    "chord_keeps_pace",
)
_PER_TARGET = ("target_levels", "target_losses")


class NoCertifiedPairs(UserError, ValueError):
    """No pair of a target generation could be certified (the budgets are too small)."""


@dataclasses.dataclass(frozen=True)
class TargetSet:
    """Certified targets, stacked along a leading axis M (one entry per pair).

    Attributes:
      start_params: theta_t, leaves [M, ...].
      targets: the T target points after the start, leaves [M, T, ...]; the last is theta_{t+T}.
      levels: lambda = F(theta_t), [M].
      end_losses: F(theta_{t+T}), [M].
      normalized_lengths: the chains' length over ||theta_{t+T} - theta_t||, [M].
      instance_keys: the task instance key of each pair, [M, 2] (`family.instance`).
      start_steps: t, [M].
      num_uncertified: pairs whose string search failed (left out).
      num_not_descending: pairs with F(theta_{t+T}) > F(theta_t) (left out).
      task: the task family's name.
      schedule: the level schedule of the paths ("constant", "linear" or "teacher").
      timing: how the target points sit on the paths: "arc_length", "schedule", or
        "index" (the teacher schedule: target k is the path's point k, held at level k).
      unshortened_lengths: normalized length before shortening, [M] (nan: not shortened).
      chord_deviations: the path's largest distance from the chord over the chord's length, [M].
      chord_break_fractions: the fraction of teacher steps where the chord is above the
        teacher's loss, [M].
      num_beads: points of each path, [M].
      path: what the targets lie on: "level_set" (searched paths), "teacher" (the
        teacher's iterates) or "chord" (`TargetOptions.path`).
      converged: 1 where shortening met its convergence criterion, 0 where its round
        budget ran out first, [M] (nan: not shortened).
      shortening_rounds: rounds the shortening ran, [M] (nan: not shortened).
      convergence_criteria: the last relative change of length (`PathResult.criterion`), [M].
      chord_keeps_pace: 1 where the chord walked at an uneven speed keeps the teacher's
        schedule (`target_geometry.chord_keeps_pace`; the shortest pace-keeping path is
        then the chord), else 0, [M].
      target_levels: the level each target point must be at or below, [M, T]: its
        schedule's level (by index, or at the target's arc-length fraction); for the
        unsearched teacher and chord paths, F(theta_t).
      target_losses: the certifying loss at each target point, [M, T].
      num_dropped: certified pairs left out because another arm of the same ablation
        could not certify them (`subset`; every arm imitates the same pairs).
    """

    start_params: PyTree
    targets: PyTree
    levels: np.ndarray
    end_losses: np.ndarray
    normalized_lengths: np.ndarray
    instance_keys: np.ndarray
    start_steps: np.ndarray
    num_uncertified: int
    num_not_descending: int
    task: str
    schedule: str = "constant"
    timing: str = "arc_length"
    unshortened_lengths: np.ndarray | None = None
    chord_deviations: np.ndarray | None = None
    chord_break_fractions: np.ndarray | None = None
    num_beads: np.ndarray | None = None
    path: str = "level_set"
    converged: np.ndarray | None = None
    shortening_rounds: np.ndarray | None = None
    convergence_criteria: np.ndarray | None = None
    chord_keeps_pace: np.ndarray | None = None
    num_dropped: int = 0
    target_levels: np.ndarray | None = None
    target_losses: np.ndarray | None = None

    def __post_init__(self):
        horizon = np.shape(jax.tree_util.tree_leaves(self.targets)[0])[1]
        for name in _PER_PAIR + _PER_TARGET:
            if getattr(self, name) is None:
                shape = (len(self.levels),) + ((horizon,) if name in _PER_TARGET else ())
                object.__setattr__(self, name, np.full(shape, np.nan))

    def pair_keys(self) -> list[tuple[int, int, int]]:
        """Each pair's place in the teacher's runs: (instance key words, start step t)."""
        return [
            (int(k[0]), int(k[1]), int(t))
            for k, t in zip(np.asarray(self.instance_keys), self.start_steps)
        ]

    def subset(self, keys: list[tuple[int, int, int]]) -> TargetSet:
        """The pairs at `keys` (`pair_keys`), in that order; pairs left out are counted in `num_dropped`.

        Raises:
          KeyError: a key is not a pair of this set.
        """
        index = {key: j for j, key in enumerate(self.pair_keys())}
        missing = [key for key in keys if key not in index]
        if missing:
            raise KeyError(f"pairs {missing[:3]} are not in this target set")
        rows = np.asarray([index[key] for key in keys], np.int64)
        pick = lambda tree: jax.tree_util.tree_map(lambda x: np.asarray(x)[rows], tree)
        per_pair = {
            f.name: pick(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name
            in (
                "start_params",
                "targets",
                "levels",
                "end_losses",
                "normalized_lengths",
                "instance_keys",
                "start_steps",
            )
            + _PER_PAIR
            + _PER_TARGET
        }
        return dataclasses.replace(
            self, **per_pair, num_dropped=self.num_dropped + len(self.levels) - len(rows)
        )

    def target_excesses(self) -> np.ndarray:
        """(loss - level) / level of every target point, [M, T]: <= 0 where it keeps its level (nan: unknown)."""
        return (np.asarray(self.target_losses) - self.target_levels) / np.abs(self.target_levels)

    def largest_target_excess(self) -> float:
        """The largest of `target_excesses` (nan: unknown)."""
        excess = self.target_excesses()
        return float(np.max(excess)) if np.isfinite(excess).any() else float("nan")

    def save(self, path: str | os.PathLike) -> None:
        """Writes the set to a `.npz` file (atomic, no pickle)."""
        arrays = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("start_params", "targets")
        }
        save_path(path, {"start": self.start_params, "targets": self.targets}, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TargetSet:
        """Reads a set written by `save`; ValueError naming the file if it is not one."""
        tree, meta = load_path(path)
        optional = set(_DEFAULTS) | set(_PER_PAIR) | set(_PER_TARGET)
        missing = (
            {f.name for f in dataclasses.fields(cls)}
            - {"start_params", "targets"}
            - set(meta)
            - optional
        )
        if missing or set(tree) != {"start", "targets"}:
            raise ValueError(f"{path}: not a TargetSet file (missing {sorted(missing)})")
        return cls(start_params=tree["start"], targets=tree["targets"], **meta)
