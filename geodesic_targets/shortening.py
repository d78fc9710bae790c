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

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from geodesic_targets.certify import path_excess, point_levels
from geodesic_targets.interpolation import grid
from geodesic_targets.options import LevelSchedule, ShortenOptions
from geodesic_targets.path_energy import energy_step
from geodesic_targets.path_result import PathResult, describe_path
from geodesic_targets.paths import _num_beads, path_length, resample, segment_lengths

PyTree = Any


def _tree_dot(a: PyTree, b: PyTree) -> jax.Array:
    return sum(
        jnp.vdot(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))
    )


def project_below(
    loss_fn: Callable[[PyTree], jax.Array],
    point: PyTree,
    target: jax.Array,
    steps: int,
    max_step: jax.Array,
) -> PyTree:
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

    point, _, _ = jax.lax.while_loop(
        keep_going, step_toward, (point, jnp.zeros([], jnp.int32), jnp.zeros([], bool))
    )
    return point


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


@dataclasses.dataclass
class _Progress:
    """Where one path's relaxation stands (host bookkeeping between rounds)."""

    lengths: list[float]
    damping: float = 1.0
    converged: bool = False
    rounds: int = 0
    criterion: float = float("nan")
    residual: float = float("nan")


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
        progress = [_Progress([float(x)]) for x in np.asarray(jax.vmap(path_length)(points))]
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
        self, points, levels, contexts, progress: list[_Progress], active: list[int]
    ) -> PyTree:
        """One energy step and projection of every path in `active`; the others keep their points."""
        values, grads, own = self._linearize(points, levels, contexts)
        values, own = np.asarray(values), np.asarray(own)
        flat_points, flat_grads = _flatten(points, 2), _flatten(grads, 2)
        moved = flat_points.copy()
        for i in active:
            interior, _ = energy_step(
                flat_points[i], values[i], flat_grads[i], self.options.alpha * own[i]
            )
            step = interior - flat_points[i, 1:-1]
            chord = np.linalg.norm(flat_points[i, -1] - flat_points[i, 0])
            norms = np.linalg.norm(step, axis=1, keepdims=True)
            scale = progress[i].damping * np.minimum(1.0, chord / np.maximum(norms, 1e-300))
            moved[i, 1:-1] = flat_points[i, 1:-1] + step * scale
        new = _unflatten(moved, points, 2)
        max_step = jax.vmap(lambda path: jnp.mean(segment_lengths(path)))(new)
        restored, lengths, residuals = self._restore(new, levels, contexts, max_step)
        keep = np.zeros(len(progress), bool)
        keep[active] = True
        out = jax.tree_util.tree_map(
            lambda a, b: jnp.where(keep.reshape((-1,) + (1,) * (a.ndim - 1)), a, b),
            restored,
            points,
        )
        for i in active:
            self._update(progress[i], float(lengths[i]), float(residuals[i]))
        return out

    def _update(self, progress: _Progress, length: float, residual: float) -> None:
        """Records a round's length and residual, halves the step where the length oscillates, decides convergence.

        The energy step leaves out the constraints' curvature; where that curvature is
        large the full step overshoots and the length alternates between two values
        round after round: every change of sign halves all later steps (down to 1/16).
        The step never grows back: on ReLU nets, whose gradients jump between activation
        patterns, a step allowed to grow again kept the length wandering by 0.3% for 100
        rounds, where a step that only shrinks converged in 35-45.
        """
        opts = self.options
        if (
            len(progress.lengths) >= 2
            and (length - progress.lengths[-1]) * (progress.lengths[-1] - progress.lengths[-2]) < 0
        ):
            progress.damping = max(progress.damping / 2, 1 / 16)
        progress.lengths.append(length)
        progress.rounds += 1
        progress.residual = residual
        recent = np.asarray(progress.lengths[-(opts.window + 1) :])
        if len(recent) > opts.window:
            progress.criterion = float(np.max(np.abs(np.diff(recent))) / max(length, 1e-30))
            progress.converged = progress.criterion <= opts.tolerance and residual <= 0

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
        self, beads, original, schedule, context, seconds, progress: _Progress
    ) -> PathResult:
        certified, length, top = self._certify_one(
            beads, jnp.asarray(schedule.levels, jnp.float32), context
        )
        state = (
            f"converged in {progress.rounds} rounds"
            if progress.converged
            else f"not converged in {progress.rounds} rounds (criterion {progress.criterion:.2g})"
        )
        if not bool(certified):
            reason = f"no certified path found (the input was not certified either); {state}"
        elif float(length) < float(path_length(original)):
            reason = f"shortened and certified; {state}"
        else:
            reason = f"no shorter certified path found: the certified input is returned; {state}"
        result = describe_path(
            beads,
            np.asarray(top),
            bool(certified),
            reason,
            schedule.start,
            depth=0,
            steps=0,
            timings={"total_s": seconds},
        )
        return dataclasses.replace(
            result,
            length_before=float(path_length(original)),
            beads_before=_num_beads(original),
            converged=progress.converged,
            rounds=progress.rounds,
            criterion=progress.criterion,
            residual=progress.residual,
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
