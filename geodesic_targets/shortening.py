"""Path shortening inside a level set: a discrete curve-shortening flow with projections.

String sampling returns *a* certified chain, whose length depends on where the bead
optimizer happened to leave each bead (GEODESICS.md: Adam beads 1.36-1.49 on MNIST,
SGD beads 1.04-1.05). Shortening relaxes the chain toward the geodesic of the level
set, whatever produced it. The chain is resampled at points of equal arc length,
coarse to fine (5, 9, 17, ... up to `num_points`: a coarse path straightens in few rounds,
a fine one then only needs local moves; a path with one level per point keeps its
points); then, every round, each
interior point moves part of the way to its neighbours' midpoint (the gradient step
of the discrete path energy, sum |p_{i+1} - p_i|^2, whose minimizers are
equally spaced shortest paths) and is projected back below alpha times its level by
Gauss-Newton steps on the loss, p <- p - (F(p) - target) / |grad F|^2 grad F. All
points (and, in `shorten_many`, all paths) relax together in one vmapped, jitted
call. Every `check_every` rounds the path is certified exactly as string sampling
certifies (`geodesic_targets.certify`), and the shortest certified path seen is the
result, so shortening never returns a longer path than a certified input.

Why this form: constrained re-beading (Freeman & Bruna, section 6) also shortens but
re-trains beads with the bead optimizer, so its result still depends on it; the
projection here uses only the loss and its gradient.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from geodesic_targets.certify import path_excess, point_levels
from geodesic_targets.interpolation import grid
from geodesic_targets.options import LevelSchedule, ShortenOptions
from geodesic_targets.path_result import PathResult, describe_path
from geodesic_targets.paths import _num_beads, path_length, resample, segment_lengths

PyTree = Any


def _tree_dot(a: PyTree, b: PyTree) -> jax.Array:
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def project_below(loss_fn: Callable[[PyTree], jax.Array], point: PyTree, target: jax.Array,
                  steps: int, max_step: jax.Array) -> PyTree:
    """Gauss-Newton steps toward {loss <= target}, at most `steps`; stops once there.

    Each step moves p by (F(p) - target) / |grad F|^2 along -grad F (exact for a
    linear loss), at most `max_step` in norm. A point already below the target does
    not move (one loss evaluation; under `vmap` the loop runs until every point is
    done, and finished points stay put).
    """
    def keep_going(carry):
        _, step, done = carry
        return (~done) & (step < steps)

    def step_toward(carry):
        p, step, _ = carry
        value, g = jax.value_and_grad(loss_fn)(p)
        norm = jnp.sqrt(_tree_dot(g, g))
        excess = jnp.maximum(value - target, 0.0)
        distance = jnp.minimum(excess / jnp.maximum(norm, 1e-30), max_step)
        scale = jnp.where(norm > 0, distance / jnp.maximum(norm, 1e-30), 0.0)
        moved = jax.tree_util.tree_map(lambda x, gx: x - scale * gx, p, g)
        return moved, step + 1, excess <= 0

    point, _, _ = jax.lax.while_loop(keep_going, step_toward, (point, jnp.zeros([], jnp.int32),
                                                                jnp.zeros([], bool)))
    return point


def relax(loss_fn: Callable[[PyTree], jax.Array], points: PyTree, levels: jax.Array, by: str,
          options: ShortenOptions, max_step: jax.Array, rounds: int) -> PyTree:
    """`rounds` rounds of pull-to-midpoint and projection of the interior points [n, ...]."""
    interior = lambda tree: jax.tree_util.tree_map(lambda x: x[1:-1], tree)
    put_interior = lambda tree, new: jax.tree_util.tree_map(lambda x, y: x.at[1:-1].set(y), tree, new)

    def one_round(_, path):
        pulled = put_interior(path, jax.tree_util.tree_map(
            lambda x: x[1:-1] + options.pull * (0.5 * (x[:-2] + x[2:]) - x[1:-1]), path))
        targets = options.alpha * point_levels(levels, by, pulled)[1:-1]
        project = lambda p, t: project_below(loss_fn, p, t, options.projection_steps, max_step)
        return put_interior(pulled, jax.vmap(project)(interior(pulled), targets))

    return jax.lax.fori_loop(0, rounds, one_round, points)


class Shortener:
    """Shortens paths for one loss; compiled functions are reused across calls.

    Args:
      loss_fn: the certifying loss `(params, context) -> scalar` (deterministic).
      options: the relaxation budgets.
      by: "fraction" or "index": how the schedules of the paths are indexed
        (`LevelSchedule.by`); one compilation serves one kind.
    """

    def __init__(self, loss_fn: Callable[[PyTree, Any], jax.Array],
                 options: ShortenOptions = ShortenOptions(), by: str = "fraction"):
        self.options, self.by, self.ts = options, by, grid(options.num_grid)

        def chunk(points, levels, context, max_step):
            return relax(lambda p: loss_fn(p, context), points, levels, by, options, max_step,
                         options.check_every)

        def certify(points, levels, context):
            excess, top = path_excess(lambda p: loss_fn(p, context), points, levels, by, self.ts)
            return jnp.all(excess <= 0), path_length(points), top

        self._chunk = jax.jit(jax.vmap(chunk))
        self._certify = jax.jit(jax.vmap(certify))
        self._certify_one = jax.jit(certify)

    def _start(self, beads: PyTree, schedule: LevelSchedule) -> PyTree:
        """The path the relaxation starts from (same point count for every path of a call)."""
        if schedule.by != self.by:
            raise ValueError(f"this Shortener takes schedules by {self.by!r}, got one by {schedule.by!r}")
        if schedule.by == "index":
            if _num_beads(beads) != len(schedule.levels):
                raise ValueError(f"a schedule by index needs one level per point: {len(schedule.levels)} "
                                 f"levels for {_num_beads(beads)} points")
            return jax.tree_util.tree_map(jnp.asarray, beads)
        return resample(beads, self._stages()[0])

    def shorten_many(self, paths: Sequence[PyTree], schedules: Sequence[LevelSchedule],
                     contexts: Optional[Any] = None) -> list[PathResult]:
        """Shortens several paths at once (their relaxations run in one vmapped call).

        Args:
          paths: stacked chains (each leaves [n_j, ...]); any number of beads each for
            schedules by fraction, exactly one per level for schedules by index.
          schedules: one `LevelSchedule` per path (all by `self.by`, levels of equal count).
          contexts: the losses' contexts stacked along axis 0, or None.

        Returns:
          One `PathResult` per path: the shortest certified path seen (the input, when
          it is certified and nothing shorter was), with `length_before` = the input's length.
        """
        tick = time.perf_counter()
        count = len(paths)
        levels = jnp.asarray([s.levels for s in schedules], jnp.float32)
        contexts = jnp.zeros(count) if contexts is None else contexts
        context_of = lambda i: jax.tree_util.tree_map(lambda c: c[i], contexts)
        best = [self._input_if_certified(p, s, context_of(i)) for i, (p, s) in enumerate(zip(paths, schedules))]
        points = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *[self._start(p, s) for p, s in zip(paths, schedules)])
        for num_points in self._stages():
            if num_points is not None:  # coarse to fine: a coarse path relaxes in few rounds
                points = jax.vmap(lambda path: resample(path, num_points))(points)
            max_step = jax.vmap(lambda path: jnp.mean(segment_lengths(path)))(points)
            for _ in range(max(1, self.options.rounds // self.options.check_every)):
                points = self._chunk(points, levels, contexts, max_step)
                certified, lengths, _ = (np.asarray(x) for x in self._certify(points, levels, contexts))
                for i in np.flatnonzero(certified & (lengths < np.array([b[1] for b in best]))):
                    best[i] = (jax.device_get(jax.tree_util.tree_map(lambda x, i=i: x[i], points)), float(lengths[i]))
        seconds = (time.perf_counter() - tick) / count
        last = lambda i: jax.tree_util.tree_map(lambda x: x[i], points)
        return [self._result(b[0] if b[0] is not None else last(i), p, s, context_of(i), seconds)
                for i, (b, p, s) in enumerate(zip(best, paths, schedules))]

    def _stages(self) -> list[Optional[int]]:
        """Point counts of the coarse-to-fine stages (5, 9, 17, ... up to num_points); one stage by index."""
        if self.by == "index":
            return [None]
        counts, n = [], 5
        while n < self.options.num_points:
            counts.append(n)
            n = 2 * n - 1
        return counts + [self.options.num_points]

    def shorten(self, beads: PyTree, schedule: LevelSchedule, context: Any = None) -> PathResult:
        """`shorten_many` of one path."""
        contexts = None if context is None else jax.tree_util.tree_map(lambda c: jnp.asarray(c)[None], context)
        return self.shorten_many([beads], [schedule], contexts)[0]

    def _input_if_certified(self, beads, schedule, context) -> tuple[Optional[PyTree], float]:
        certified, length, _ = self._certify_one(beads, jnp.asarray(schedule.levels, jnp.float32), context)
        return (beads, float(length)) if bool(certified) else (None, float("inf"))

    def _result(self, beads, original, schedule, context, seconds) -> PathResult:
        certified, length, top = self._certify_one(beads, jnp.asarray(schedule.levels, jnp.float32), context)
        if not bool(certified):
            reason = "no certified path found (the input was not certified either)"
        elif float(length) < float(path_length(original)):
            reason = "shortened and certified"
        else:
            reason = "no shorter certified path found: the certified input is returned"
        result = describe_path(beads, np.asarray(top), bool(certified), reason, schedule.start,
                               depth=0, steps=0, timings={"total_s": seconds})
        return dataclasses.replace(result, length_before=float(path_length(original)),
                                   beads_before=_num_beads(original))


def shorten(loss_fn: Callable[[PyTree], jax.Array], beads: PyTree, threshold: float | LevelSchedule, *,
            num_points: int = 33, **options: Any) -> PathResult:
    """Shortens a certified chain inside {loss <= threshold} (or a `LevelSchedule`).

    A one-call form of `Shortener(...).shorten(...)`; `options` are the other fields of
    `ShortenOptions` (rounds, pull, alpha, projection_steps, check_every, num_grid).
    """
    schedule = LevelSchedule.of(threshold)
    shortener = Shortener(lambda p, _: loss_fn(p), ShortenOptions(num_points=num_points, **options),
                          schedule.by)
    return shortener.shorten(beads, schedule)
