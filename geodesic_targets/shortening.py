"""Path shortening inside a level set, run to convergence and reported as such.

String sampling returns *a* certified chain, whose length depends on where the bead
optimizer happened to leave each bead (GEODESICS.md: Adam beads 1.36-1.49 on MNIST,
SGD beads 1.04-1.05). Shortening replaces it by the minimizer of the discrete path
energy 1/2 sum |p_{i+1} - p_i|^2 with every interior point held at or below alpha times
its level (`LevelSchedule`: one level per point by index, or the level at the point's
arc-length fraction), the ends fixed. Each round

1. evaluates the loss and its gradient at every interior point (one vmapped, jitted
   call for all points of all paths);
2. takes the exact energy step under the linearized constraints
   (`geodesic_targets.path_energy`: the Laplacian inverted in closed form, an
   m-dimensional non-negative least-squares dual), at most one chord length per point;
3. projects every point back below alpha times its level by Gauss-Newton steps on the
   loss (`project_below`), which removes what the linearization left.

It stops when the path's length changed by less than `tolerance` (relative) over the
last `window` rounds and every point is at or below its level, or after `rounds`
rounds; each `PathResult` records whether it converged, the rounds and the criterion.
Every `check_every` rounds, and at the end, the path is certified exactly as string
sampling certifies (`geodesic_targets.certify`); the result is the converged path when
it certifies and is no longer than a certified input (under a level per point an
earlier round's path can be shorter, with unevener steps: the converged one is the
answer), else the shortest certified path seen (the input, when it was certified and
nothing shorter was), so shortening never returns a longer path than a certified input.

Why the energy and not the length: its minimizer is unique in a convex set (the
length is invariant under sliding points along the path), smooth, and under a level
per point it is the path of least summed squared steps that keeps the schedule; for
a constant level it is the shortest path with equally spaced points. The length is
what is reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from common.pytree import PyTree
from geodesic_targets.certify import path_excess, point_levels
from geodesic_targets.interpolation import grid
from geodesic_targets.level_schedule import LevelSchedule
from geodesic_targets.options import ShortenOptions
from geodesic_targets.path_energy import energy_step
from geodesic_targets.path_result import PathResult
from geodesic_targets.paths import _num_beads, path_length, resample, segment_lengths
from geodesic_targets.projection import project_below
from geodesic_targets.shortening_progress import Progress, record_round, shortened_result


def _interior(tree: PyTree) -> PyTree:
    return jax.tree_util.tree_map(lambda x: x[1:-1], tree)


def _flatten(tree: PyTree, batch_dims: int) -> np.ndarray:
    """Leaves [*batch, ...] -> one float64 array [*batch, D] (leaves in tree order)."""
    leaves = [np.asarray(x, np.float64) for x in jax.tree_util.tree_leaves(tree)]
    return np.concatenate([x.reshape(x.shape[:batch_dims] + (-1,)) for x in leaves], axis=-1)


def _unflatten(flat: np.ndarray, like: PyTree, batch_dims: int) -> PyTree:
    """The inverse of `_flatten` onto the structure, trailing shapes and dtypes of `like`."""
    leaves, treedef = jax.tree_util.tree_flatten(like)
    sizes = [int(np.prod(np.shape(x)[batch_dims:])) for x in leaves]
    parts = np.split(flat, np.cumsum(sizes)[:-1], axis=-1)
    return treedef.unflatten(
        [
            jnp.asarray(
                p.reshape(p.shape[:batch_dims] + np.shape(x)[batch_dims:]), jnp.result_type(x)
            )
            for p, x in zip(parts, leaves)
        ]
    )


def _padded_batch(active: Sequence[int], count: int) -> np.ndarray:
    """`active` path indices, then others of the `count` paths, up to the next power of two."""
    size = min(count, 1 << (len(active) - 1).bit_length())
    others = [i for i in range(count) if i not in set(active)]
    return np.asarray([*active, *others[: size - len(active)]])


class Shortener:
    """Shortens paths for one loss; compiled functions are reused across calls.

    Args:
      loss_fn: the certifying loss `(params, context) -> scalar` (deterministic).
      options: the budgets and the convergence criterion.
      by: "fraction" or "index": how the schedules of the paths are indexed
        (`LevelSchedule.by`); one compilation serves one kind.
    """

    def __init__(
        self,
        loss_fn: Callable[[PyTree, Any], jax.Array],
        options: ShortenOptions = ShortenOptions(),
        by: str = "fraction",
    ):
        self.options, self.by, self.ts = options, by, grid(options.num_grid)

        def linearize(points, levels, context):
            values, grads = jax.vmap(jax.value_and_grad(lambda p: loss_fn(p, context)))(
                _interior(points)
            )
            return values, grads, point_levels(levels, by, points)[1:-1]

        def restore(points, levels, context, max_step):
            targets = options.alpha * point_levels(levels, by, points)[1:-1]
            project = lambda p, t: project_below(
                lambda q: loss_fn(q, context), p, t, options.projection_steps, max_step
            )
            moved = jax.vmap(project)(_interior(points), targets)
            points = jax.tree_util.tree_map(lambda x, y: x.at[1:-1].set(y), points, moved)
            values = jax.vmap(lambda p: loss_fn(p, context))(_interior(points))
            own = point_levels(levels, by, points)[1:-1]
            return points, path_length(points), jnp.max((values - own) / jnp.abs(own))

        def certify(points, levels, context):
            excess, top = path_excess(lambda p: loss_fn(p, context), points, levels, by, self.ts)
            return jnp.all(excess <= 0), path_length(points), top

        self._linearize = jax.jit(jax.vmap(linearize))
        self._restore = jax.jit(jax.vmap(restore))
        self._certify = jax.jit(jax.vmap(certify))
        self._certify_one = jax.jit(certify)

    def _start(self, beads: PyTree, schedule: LevelSchedule) -> PyTree:
        """The path the relaxation starts from (same point count for every path of a call)."""
        if schedule.by != self.by:
            raise ValueError(
                f"this Shortener takes schedules by {self.by!r}, got one by {schedule.by!r}"
            )
        if schedule.by == "index":
            if _num_beads(beads) != len(schedule.levels):
                raise ValueError(
                    f"a schedule by index needs one level per point: {len(schedule.levels)} "
                    f"levels for {_num_beads(beads)} points"
                )
            return jax.tree_util.tree_map(jnp.asarray, beads)
        return resample(beads, self.options.num_points)

    def shorten_many(
        self,
        paths: Sequence[PyTree],
        schedules: Sequence[LevelSchedule],
        contexts: Any | None = None,
    ) -> list[PathResult]:
        """Shortens several paths at once (every round of all of them in one vmapped call).

        Args:
          paths: stacked chains (each leaves [n_j, ...]); any number of beads each for
            schedules by fraction, exactly one per level for schedules by index.
          schedules: one `LevelSchedule` per path (all by `self.by`, levels of equal count).
          contexts: the losses' contexts stacked along axis 0, or None.

        Returns:
          One `PathResult` per path (see the module doc), with `length_before` the
          input's length and the relaxation's `converged`, `rounds`, `criterion`, `residual`.
        """
        tick, opts = time.perf_counter(), self.options
        count = len(paths)
        levels = jnp.asarray([s.levels for s in schedules], jnp.float32)
        contexts = jnp.zeros(count) if contexts is None else contexts
        context_of = lambda i: jax.tree_util.tree_map(lambda c: c[i], contexts)
        best = [
            self._input_if_certified(p, s, context_of(i))
            for i, (p, s) in enumerate(zip(paths, schedules))
        ]
        inputs = [length for _, length in best]  # inf where the input is not certified
        points = jax.tree_util.tree_map(
            lambda *xs: jnp.stack(xs), *[self._start(p, s) for p, s in zip(paths, schedules)]
        )
        progress = [Progress([float(x)]) for x in np.asarray(jax.vmap(path_length)(points))]
        for index in range(opts.rounds):
            active = [i for i, p in enumerate(progress) if not p.converged]
            if not active:
                break
            points = self._round(points, levels, contexts, progress, active)
            if (index + 1) % opts.check_every == 0 and not all(p.converged for p in progress):
                self._keep_certified(points, levels, contexts, best)
        final_certified = self._keep_certified(points, levels, contexts, best)
        final_lengths = np.asarray(jax.vmap(path_length)(points))
        for i in np.flatnonzero(
            final_certified
        ):  # a converged path is the answer, not an earlier shorter one
            if progress[i].converged and final_lengths[i] <= inputs[i]:
                best[i] = (
                    jax.device_get(jax.tree_util.tree_map(lambda x, i=i: x[i], points)),
                    float(final_lengths[i]),
                )
        seconds = (time.perf_counter() - tick) / count
        last = lambda i: jax.tree_util.tree_map(lambda x: x[i], points)
        return [
            self._result(
                b[0] if b[0] is not None else last(i), p, s, context_of(i), seconds, progress[i]
            )
            for i, (b, p, s) in enumerate(zip(best, paths, schedules))
        ]

    def _round(
        self, points, levels, contexts, progress: list[Progress], active: list[int]
    ) -> PyTree:
        """One energy step and projection of every path in `active`; the others keep their points.

        Only the active paths are computed (padded to a power of two with finished ones, whose
        results are dropped, so a call compiles for at most log2(paths) + 1 batch sizes): paths
        that converge early stop costing rounds. Each path's result is its own, as if shortened
        alone, up to the last bit that XLA's batched arithmetic may change with the batch size.
        """
        batch = _padded_batch(active, len(progress))
        take = lambda tree: jax.tree_util.tree_map(lambda x: x[batch], tree)
        sub_points, sub_levels, sub_contexts = take(points), levels[batch], take(contexts)
        values, grads, own = self._linearize(sub_points, sub_levels, sub_contexts)
        values, own = np.asarray(values), np.asarray(own)
        flat_points, flat_grads = _flatten(sub_points, 2), _flatten(grads, 2)
        moved = flat_points.copy()
        for j, i in enumerate(active):  # the active paths are the batch's first entries
            interior, _ = energy_step(
                flat_points[j], values[j], flat_grads[j], self.options.alpha * own[j]
            )
            step = interior - flat_points[j, 1:-1]
            chord = np.linalg.norm(flat_points[j, -1] - flat_points[j, 0])
            norms = np.linalg.norm(step, axis=1, keepdims=True)
            scale = progress[i].damping * np.minimum(1.0, chord / np.maximum(norms, 1e-300))
            moved[j, 1:-1] = flat_points[j, 1:-1] + step * scale
        new = _unflatten(moved, sub_points, 2)
        max_step = jax.vmap(lambda path: jnp.mean(segment_lengths(path)))(new)
        restored, lengths, residuals = self._restore(new, sub_levels, sub_contexts, max_step)
        count = len(active)
        out = jax.tree_util.tree_map(
            lambda full, part: full.at[np.asarray(active)].set(part[:count]), points, restored
        )
        for j, i in enumerate(active):
            record_round(progress[i], float(lengths[j]), float(residuals[j]), self.options)
        return out

    def _keep_certified(self, points, levels, contexts, best) -> np.ndarray:
        """Keeps each path's points where they certify and are shorter than its best so far; returns which certify."""
        certified, lengths, _ = (np.asarray(x) for x in self._certify(points, levels, contexts))
        for i in np.flatnonzero(certified & (lengths < np.array([b[1] for b in best]))):
            best[i] = (
                jax.device_get(jax.tree_util.tree_map(lambda x, i=i: x[i], points)),
                float(lengths[i]),
            )
        return certified

    def shorten(self, beads: PyTree, schedule: LevelSchedule, context: Any = None) -> PathResult:
        """`shorten_many` of one path."""
        contexts = (
            None
            if context is None
            else jax.tree_util.tree_map(lambda c: jnp.asarray(c)[None], context)
        )
        return self.shorten_many([beads], [schedule], contexts)[0]

    def _input_if_certified(self, beads, schedule, context) -> tuple[PyTree | None, float]:
        certified, length, _ = self._certify_one(
            beads, jnp.asarray(schedule.levels, jnp.float32), context
        )
        return (beads, float(length)) if bool(certified) else (None, float("inf"))

    def _result(
        self, beads, original, schedule, context, seconds, progress: Progress
    ) -> PathResult:
        certified, length, top = self._certify_one(
            beads, jnp.asarray(schedule.levels, jnp.float32), context
        )
        return shortened_result(
            beads, original, schedule, seconds, progress, certified, length, top
        )


def shorten(
    loss_fn: Callable[[PyTree], jax.Array],
    beads: PyTree,
    threshold: float | LevelSchedule,
    *,
    num_points: int = 33,
    **options: Any,
) -> PathResult:
    """Shortens a certified chain inside {loss <= threshold} (or a `LevelSchedule`).

    A one-call form of `Shortener(...).shorten(...)`; `options` are the other fields of
    `ShortenOptions` (rounds, tolerance, window, alpha, projection_steps, check_every, num_grid).
    """
    schedule = LevelSchedule.of(threshold)
    shortener = Shortener(
        lambda p, _: loss_fn(p), ShortenOptions(num_points=num_points, **options), schedule.by
    )
    return shortener.shorten(beads, schedule)
