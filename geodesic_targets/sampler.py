"""Dynamic String Sampling: connecting two points inside a level set by a chain of beads.

The recursion runs breadth-first: at each level every unverified segment is
measured in one vmapped call, and every segment whose interpolated loss exceeds
the threshold gets a new bead; all beads of a level are trained together in one
vmapped, jitted call, so the number of compiled calls grows with the recursion
depth rather than with the number of beads. (On a CPU with small networks the
host work per bead still dominates; see BENCHMARKS.md.)

The level may move along the path (`LevelSchedule` by arc-length fraction): a bead
is trained below alpha times the level at its fraction, and every segment is
certified against the level at each grid point's fraction (`certify`); since new
beads shift the fractions, every segment is measured again after each insertion.
With `shorten` the certified chain is then relaxed toward the geodesic (`shorten`);
with `align` the second end's hidden units are first permuted towards the first's.

References:
  Freeman & Bruna, "Topology and geometry of half-rectified network
  optimization", ICLR 2017: Algorithm 1 and section 6.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from common.pytree import PyTree
from geodesic_targets.alignment import align
from geodesic_targets.bead_batches import measure_segments, train_beads
from geodesic_targets.beads import BeadTraining
from geodesic_targets.certify import grid_levels, point_fractions, segment_excess
from geodesic_targets.interpolation import grid, lerp
from geodesic_targets.level_schedule import LevelSchedule
from geodesic_targets.options import ConnectOptions, Method
from geodesic_targets.path_result import PathResult, describe_path
from geodesic_targets.paths import endpoint_distance, stack
from geodesic_targets.shortening import Shortener

END_SLACK = 1e-5  # an end at most this far above its level (relative) is accepted: its level is raised by it


class StringSampler:
    """Connects pairs of points for one loss; compiled functions are reused across calls.

    Args:
      loss_fn: the certifying loss `(params, context) -> scalar`, JAX-traceable and
        deterministic (a task's `eval_loss`, or anything else). `context` is what
        `connect(..., context=...)` passes (e.g. a task instance key), so many
        problems of one shape share one compilation.
      optimizer: optax optimizer that trains beads (default: Adam, learning rate 1e-2).
      options: budgets and choices (`options.shorten` relaxes every connected chain).
      train_loss_fn: optional minibatch loss `(params, key, context) -> scalar` for
        bead training.
    """

    def __init__(
        self,
        loss_fn: Callable[[PyTree, Any], jax.Array],
        optimizer: optax.GradientTransformation | None = None,
        options: ConnectOptions = ConnectOptions(),
        train_loss_fn: Callable[[PyTree, jax.Array, Any], jax.Array] | None = None,
    ):
        self.options = options
        self.ts = grid(options.num_grid)
        training = BeadTraining(
            loss_fn,
            optimizer or optax.adam(1e-2),
            options.max_steps,
            options.method,
            options.pull,
            train_loss_fn,
        )
        self._loss = jax.jit(loss_fn)
        self._excess = jax.jit(
            lambda lefts, rights, levels, context: segment_excess(
                lambda p: loss_fn(p, context), lefts, rights, levels, self.ts
            )
        )
        self._train = jax.jit(training.train_many)
        self._shortener = Shortener(loss_fn, options.shortening) if options.shorten else None

    def connect(
        self,
        theta_a: PyTree,
        theta_b: PyTree,
        threshold: Any,
        *,
        key: jax.Array,
        context: Any = None,
    ) -> PathResult:
        """Searches for a chain from theta_a to theta_b inside {loss <= threshold}.

        Args:
          theta_a, theta_b: the ends, params pytrees.
          threshold: the level lambda, or a schedule by arc-length fraction: a
            `LevelSchedule`, levels at equal fractions (sequence or array), or a callable
            of the fraction (`LevelSchedule.of`). An end up to `END_SLACK` (relative)
            above its level is accepted, its level raised by that slack.
          key: PRNG key of bead training (bead j of the search uses fold_in(key, j)).
          context: passed to the losses (same structure and shapes on every call).

        Returns:
          The `PathResult`; `connected` is False with a reason when a budget ran out.
          With `options.shorten`, a connected chain is returned shortened (never longer).
          With `options.align`, the chain ends at theta_b aligned to theta_a.
        """
        schedule = LevelSchedule.of(threshold)
        if schedule.by != "fraction":
            raise ValueError(
                "string sampling takes schedules by arc-length fraction; a schedule by "
                "point index belongs to a path of fixed points (use shorten)"
            )
        unaligned = float("nan")
        if self.options.align:
            unaligned = float(endpoint_distance(stack([theta_a, theta_b])))
            theta_b = align(theta_a, theta_b).params
        ends = float(self._loss(theta_a, context)), float(self._loss(theta_b, context))
        schedule = schedule.raised_at_ends(*ends, END_SLACK)
        result = dataclasses.replace(
            self._search(theta_a, theta_b, schedule, key, context), unaligned_distance=unaligned
        )
        if self._shortener is None or not result.connected:
            return result
        short = self._shortener.shorten(result.beads, schedule, context)
        timings = {**result.timings, "shorten_s": short.timings["total_s"]}
        return dataclasses.replace(
            short,
            depth=result.depth,
            training_steps=result.training_steps,
            timings=timings,
            reason=f"{result.reason}; {short.reason}",
            unaligned_distance=unaligned,
        )

    def _search(self, theta_a, theta_b, schedule: LevelSchedule, key, context) -> PathResult:
        opts, start = self.options, time.perf_counter()
        levels = jnp.asarray(schedule.levels, jnp.float32)
        moving = len(set(schedule.levels)) > 1  # fractions shift with every bead: re-verify all
        timings = {"measure_s": 0.0, "train_s": 0.0}
        beads, verified = [theta_a, theta_b], [False]
        seg_max = np.full(1, np.nan)
        depth, inserted, total_steps, reason = 0, 0, 0, ""
        end_losses = [float(self._loss(theta_a, context)), float(self._loss(theta_b, context))]
        if end_losses[0] > schedule.start or end_losses[1] > schedule.end:
            over = max(end_losses[0] / schedule.start, end_losses[1] / schedule.end) - 1
            reason = (
                f"an end lies above the threshold (losses {end_losses[0]:.9g}, {end_losses[1]:.9g}; "
                f"levels {schedule.start:.9g}, {schedule.end:.9g}: {over:.2g} above, more than the "
                f"relative slack {END_SLACK:g} granted to the ends)"
            )
        while not reason:
            chain = stack(beads)
            level_grid = np.asarray(grid_levels(levels, "fraction", chain, self.ts))
            pending = [i for i, ok in enumerate(verified) if not ok or moving]
            tick = time.perf_counter()
            excess, argmax_ts, tops = measure_segments(
                self._excess, beads, pending, level_grid, context
            )
            timings["measure_s"] += time.perf_counter() - tick
            for i, e, top in zip(pending, excess, tops):
                seg_max[i], verified[i] = top, bool(e <= 0)
            failing = [(i, t) for i, e, t in zip(pending, excess, argmax_ts) if e > 0]
            if not failing:
                reason = "every segment is below the threshold"
                break
            if depth >= opts.max_depth:
                reason = f"depth budget ({opts.max_depth}) exhausted"
                break
            if inserted + len(failing) > opts.max_beads:
                reason = f"bead budget ({opts.max_beads}) exhausted"
                break
            at = lambda t: (
                0.5 if opts.insert_at == "midpoint" or opts.method == "constrained" else t
            )
            fractions = np.asarray(point_fractions(chain))
            targets = [
                opts.alpha
                * float(
                    np.interp(
                        fractions[i] + at(t) * (fractions[i + 1] - fractions[i]),
                        np.linspace(0, 1, len(schedule.levels)),
                        schedule.levels,
                    )
                )
                for i, t in failing
            ]
            starts = [lerp(beads[i], beads[i + 1], at(t)) for i, t in failing]
            keys = [jax.random.fold_in(key, inserted + j) for j in range(len(failing))]
            tick = time.perf_counter()
            new, losses, steps = train_beads(
                self._train,
                opts.batched,
                starts,
                [beads[i] for i, _ in failing],
                [beads[i + 1] for i, _ in failing],
                keys,
                targets,
                context,
            )
            timings["train_s"] += time.perf_counter() - tick
            total_steps += int(steps.sum())
            beads, verified, seg_max = _insert(
                beads, verified, seg_max, [i for i, _ in failing], new
            )
            inserted, depth = inserted + len(failing), depth + 1
            stuck = losses > np.asarray(targets) / opts.alpha
            if np.any(stuck):
                reason = (
                    f"{int(np.sum(stuck))} bead(s) stayed above the threshold after "
                    f"{opts.max_steps} training steps"
                )
        timings["total_s"] = time.perf_counter() - start
        connected = bool(all(verified)) and not np.any(np.isnan(seg_max))
        return describe_path(
            stack(beads),
            seg_max,
            connected,
            reason,
            schedule.start,
            depth=depth,
            steps=total_steps,
            timings=timings,
        )


def _insert(beads, verified, seg_max, segments, new):
    """Puts new[j] between beads[segments[j]] and its right neighbour; both halves unverified."""
    by_segment = dict(zip(segments, new))
    out_beads, out_verified, out_max = [beads[0]], [], []
    for i in range(len(beads) - 1):
        if i in by_segment:
            out_beads += [by_segment[i], beads[i + 1]]
            out_verified += [False, False]
            out_max += [np.nan, np.nan]
        else:
            out_beads.append(beads[i + 1])
            out_verified.append(verified[i])
            out_max.append(seg_max[i])
    return out_beads, out_verified, np.array(out_max)


def connect(
    loss_fn: Callable[[PyTree], jax.Array],
    theta_a: PyTree,
    theta_b: PyTree,
    threshold: float | LevelSchedule,
    *,
    key: jax.Array,
    method: Method = "greedy",
    optimizer: optax.GradientTransformation | None = None,
    train_loss_fn: Callable[[PyTree, jax.Array], jax.Array] | None = None,
    shorten: bool = False,
    level_schedule: Any = None,
    **options: Any,
) -> PathResult:
    """Connects theta_a and theta_b inside {loss_fn <= threshold} by Dynamic String Sampling.

    A one-call form of `StringSampler(...).connect(...)` for a loss `params -> scalar`
    (and a minibatch `train_loss_fn(params, key)`); `options` are the fields of
    `ConnectOptions` (alpha, num_grid, max_depth, max_beads, max_steps, insert_at,
    shortening, align, ...). `level_schedule` replaces the constant `threshold` by a level
    that moves along the path (any form `LevelSchedule.of` takes); `shorten` relaxes the connected
    chain toward the geodesic.
    Build a `StringSampler` instead to connect many pairs with one compilation.
    """
    train = None if train_loss_fn is None else (lambda p, k, _: train_loss_fn(p, k))
    sampler = StringSampler(
        lambda p, _: loss_fn(p),
        optimizer,
        ConnectOptions(method=method, shorten=shorten, **options),
        train,
    )
    return sampler.connect(
        theta_a, theta_b, threshold if level_schedule is None else level_schedule, key=key
    )
