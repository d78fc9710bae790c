"""The level set a path must stay in: `LevelSchedule`, a level that may move along the path.

A schedule is a value, not a budget: the string search (`geodesic_targets.sampler`),
shortening and target generation take one, and `LevelSchedule.of` turns what a user
passes (a number, a sequence, an array or a callable of the fraction) into one. It
lives apart from the option dataclasses (`geodesic_targets.options`, which re-exports
it) and, like them, needs no JAX.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Literal


@dataclasses.dataclass(frozen=True)
class LevelSchedule:
    """A level that may move along a path: the level set the path must stay in.

    Attributes:
      levels: the level at equally spaced positions from the path's start (first) to
        its end (last), linear in between.
      by: what a position is. "fraction": the arc-length fraction of the path (a
        schedule of the geometry, e.g. constant or linear between the ends' losses);
        a point at fraction s must have loss <= level(s). "index": the point index of
        a path with exactly len(levels) points (the teacher's schedule: target point k
        must be at least as low as the teacher after k steps); the segment from point
        k to k+1 must stay at or below the higher of their two levels.

    A schedule by fraction that falls faster than a path can descend forces detours
    (a longer path reaches each fraction later); by index, the levels belong to the
    points whatever the path's length, so no detour is ever forced (GEODESICS.md).
    """

    levels: tuple[float, ...]
    by: Literal["fraction", "index"] = "fraction"

    def __post_init__(self):
        if len(self.levels) < 2 or self.by not in ("fraction", "index"):
            raise ValueError(f"a schedule needs >= 2 levels and by 'fraction' or 'index': {self}")

    @classmethod
    def constant(cls, level: float) -> LevelSchedule:
        """The level set Omega(level) along the whole path (plain string sampling)."""
        return cls((float(level), float(level)))

    @classmethod
    def linear(cls, start: float, end: float) -> LevelSchedule:
        """From `start` at the first point to `end` at the last, linear in arc length."""
        return cls((float(start), float(end)))

    @classmethod
    def by_index(cls, levels) -> LevelSchedule:
        """One level per path point (e.g. the teacher's losses F(theta_t), ..., F(theta_{t+T}))."""
        return cls(tuple(float(x) for x in levels), "index")

    @classmethod
    def of(cls, threshold: Any, resolution: int = 101) -> LevelSchedule:
        """A schedule from what a user passes.

        Args:
          threshold: a `LevelSchedule` (as it is); a number (constant); a sequence or
            1-D array (numpy or JAX) of at least two levels at equally spaced fractions;
            or a callable of the arc-length fraction in [0, 1] returning the level there.
          resolution: the fractions a callable is sampled at (linear in between).

        Raises:
          TypeError / ValueError: naming what was passed when it is none of these.
        """
        if isinstance(threshold, LevelSchedule):
            return threshold
        if isinstance(threshold, numbers.Real):
            return cls.constant(float(threshold))
        if callable(threshold):
            values = [threshold(i / (resolution - 1)) for i in range(resolution)]
        else:
            values = threshold.tolist() if hasattr(threshold, "tolist") else threshold
            if isinstance(values, numbers.Real):  # a 0-d array
                return cls.constant(float(values))
            if not isinstance(values, (list, tuple)):
                raise TypeError(
                    f"a level schedule is a number, a sequence of levels, a callable of the "
                    f"fraction or a LevelSchedule, got {type(threshold).__name__}"
                )
        if len(values) < 2 or not all(
            isinstance(v, numbers.Real) or hasattr(v, "__float__") for v in values
        ):
            raise ValueError(
                f"a level schedule needs at least two numeric levels, got {values!r:.200}"
            )
        levels = tuple(float(v) for v in values)
        if not all(math.isfinite(v) for v in levels):
            raise ValueError(f"a level schedule's levels must be finite, got {levels!r:.200}")
        return cls(levels)

    def raised_at_ends(self, start_loss: float, end_loss: float, slack: float) -> LevelSchedule:
        """This schedule with an end's level raised by at most `slack` (relative) to that end's loss.

        A level written by hand (1 -> 0.4) for ends whose float32 losses are 1 and
        0.40000004 is then met, with the slack to spare for the same loss rounded
        another way in another compiled function; an end further above is left for
        the caller to refuse.
        """
        raise_to = lambda level, loss: (
            level * (1 + slack) if level < loss <= level * (1 + slack) else level
        )
        levels = list(self.levels)
        levels[0], levels[-1] = raise_to(levels[0], start_loss), raise_to(levels[-1], end_loss)
        return dataclasses.replace(self, levels=tuple(levels))

    @property
    def start(self) -> float:
        return self.levels[0]

    @property
    def end(self) -> float:
        return self.levels[-1]
