"""Supervision targets for a learned optimizer: paths between points of a teacher's runs.

A teacher optimizer runs on N task instances at once (`geodesic_targets.teacher`);
its trajectories are cut into pairs (theta_t, theta_{t+T}). Each pair with
F(theta_{t+T}) <= F(theta_t) gets a path that stays in a level set given by a
schedule (`TargetOptions.schedule`): Omega(F(theta_t)) or a level falling linearly
along the path (string sampling, optionally shortened), or the teacher's own pace
(the teacher's path, shortened to convergence with point k held at or below the
teacher's best loss after k steps floored at the end's loss,
`target_geometry.teacher_levels`). Under the fraction schedules T target points are
placed on the path at equal arc length or where the path reaches the teacher's
levels (`TargetOptions.timing`); under the teacher's, target k is the path's point k:
the path a learned optimizer starting at theta_t should follow in T steps. Pairs
whose path could not be certified are left out and counted. Each pair's geometry,
its shortening's convergence, and each target's level and loss are recorded
(`geodesic_targets.target_geometry`; `TargetSet.largest_target_excess`).

References:
  The research proposal (`../shared/papers/research_proposal.txt`): "a natural
  target to update theta_a is to follow the geodesic in Omega_lambda relying
  theta_a to theta_b".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from geodesic_targets import target_geometry as geometry
from geodesic_targets.options import ConnectOptions, LevelSchedule, TargetOptions
from geodesic_targets.path_result import PathResult, describe_path
from geodesic_targets.paths import bead, stack
from geodesic_targets.sampler import StringSampler
from geodesic_targets.shortening import Shortener
from geodesic_targets.target_set import NoCertifiedPairs, TargetSet
from geodesic_targets.teacher import run_teacher
from tasks.base import TaskFamily

PyTree = Any
__all__ = ["NoCertifiedPairs", "TargetSet", "generate_targets", "target_point"]


def generate_targets(
    family: TaskFamily,
    options: TargetOptions,
    connect_options: ConnectOptions,
    *,
    key: jax.Array,
    baseline: optax.GradientTransformation | None = None,
    bead_optimizer: optax.GradientTransformation | None = None,
    on_pair: Callable[[PathResult], None] | None = None,
) -> TargetSet:
    """Builds a `TargetSet` from teacher trajectories on `family` (see the module doc).

    Args:
      family: the task family; instances are drawn from `key`.
      options: instances, steps, horizon, schedule and timing.
      connect_options: string-sampling budgets; `shorten` and `shortening` (the teacher
        schedule always shortens the teacher's path with `shortening`).
      key: PRNG key of everything.
      baseline: the teacher (default Adam, 1e-2).
      bead_optimizer: trains beads (default as `StringSampler`).
      on_pair: called with each pair's path result (progress).

    Raises:
      NoCertifiedPairs: no pair was certified (raise the budgets or lower the horizon).
    """
    trajectory_key, bead_key = jax.random.split(key)
    runs = run_teacher(family, baseline or optax.adam(1e-2), options, trajectory_key)
    loss = lambda params, k: family.instance(k).eval_loss(params)
    horizon, slack = options.horizon, 1 + options.level_tolerance
    pairs = [
        (i, c * horizon)
        for i in range(options.num_instances)
        for c in range(options.num_steps // horizon)
    ]
    descending = [(i, t) for i, t in pairs if runs.losses[i, t + horizon] <= runs.losses[i, t]]
    if options.path != "level_set":
        results = [
            _unsearched(runs.pair(i, t, horizon), options.path, slack) for i, t in descending
        ]
    elif options.schedule == "teacher":
        schedules = [
            LevelSchedule.by_index(geometry.teacher_levels(runs.pair(i, t, horizon)[1]) * slack)
            for i, t in descending
        ]
        shortener = Shortener(loss, connect_options.shortening, by="index")
        results = (
            shortener.shorten_many(
                [runs.pair(i, t, horizon)[0] for i, t in descending],
                schedules,
                jnp.asarray(runs.instance_keys[[i for i, _ in descending]]),
            )
            if descending
            else []
        )
    else:
        sampler = StringSampler(
            loss, bead_optimizer, dataclasses.replace(connect_options, shorten=False)
        )
        schedules, results = [], []
        for i, t in descending:
            path, losses = runs.pair(i, t, horizon)
            ends = geometry.first_and_last(path)
            schedules.append(
                LevelSchedule.constant(losses[0] * slack)
                if options.schedule == "constant"
                else LevelSchedule.linear(losses[0] * slack, losses[-1] * slack)
            )
            results.append(
                sampler.connect(
                    *ends,
                    schedules[-1],
                    key=jax.random.fold_in(bead_key, i * 10_000 + t // horizon),
                    context=runs.instance_keys[i],
                )
            )
        if connect_options.shorten:
            results = _shorten_connected(
                Shortener(loss, connect_options.shortening),
                results,
                schedules,
                runs.instance_keys[[i for i, _ in descending]],
            )
    for result in results:
        if on_pair is not None:
            on_pair(result)
    return _target_set(
        family,
        options,
        runs,
        descending,
        results,
        schedules if options.path == "level_set" else None,
        len(pairs) - len(descending),
        loss,
        slack,
    )


def _unsearched(pair, path: str, slack: float) -> PathResult:
    """The teacher's own path, or the chord, as an uncertified path result (used as it is: no search)."""
    points, losses = pair
    beads = points if path == "teacher" else stack(geometry.first_and_last(points))
    unmeasured = np.full(jax.tree_util.tree_leaves(beads)[0].shape[0] - 1, np.nan)
    return describe_path(
        beads,
        unmeasured,
        False,
        f"{path} path, not searched",
        losses[0] * slack,
        depth=0,
        steps=0,
        timings={},
    )


def _shorten_connected(shortener, results, schedules, contexts) -> list[PathResult]:
    """Shortens the connected chains together (one vmapped relaxation); the others stay as they are."""
    done = [j for j, r in enumerate(results) if r.connected]
    if not done:
        return results
    short = shortener.shorten_many(
        [results[j].beads for j in done], [schedules[j] for j in done], jnp.asarray(contexts[done])
    )
    out = list(results)
    for j, s in zip(done, short):
        out[j] = s if s.connected else results[j]
    return out


def _target_points(options, path, losses, result, schedule, context_loss, slack):
    """The T target points of one pair and the level each must keep, [T]."""
    horizon = options.horizon
    if options.path == "teacher":  # the iterates themselves, whatever the timing
        return jax.tree_util.tree_map(lambda x: x[1:], path), np.full(horizon, losses[0] * slack)
    schedule = schedule or LevelSchedule.constant(losses[0] * slack)
    if schedule.by == "index":  # target k is the path's point k, held at level k
        return jax.tree_util.tree_map(lambda x: x[1:], result.beads), np.asarray(
            schedule.levels[1:]
        )
    if options.timing == "schedule":
        points, fractions = geometry.timed_by_schedule(
            context_loss, result.beads, geometry.teacher_levels(losses)
        )
    else:
        points, fractions = (
            geometry.at_equal_arc_length(result.beads, horizon),
            np.arange(1, horizon + 1) / horizon,
        )
    return points, np.interp(fractions, np.linspace(0, 1, len(schedule.levels)), schedule.levels)


def _target_set(
    family, options, runs, descending, results, schedules, not_descending, loss, slack
) -> TargetSet:
    horizon, rows, starts, targets = options.horizon, [], [], []
    searched = options.path == "level_set"  # teacher and chord paths are used as they are
    for j, ((i, t), result) in enumerate(zip(descending, results)):
        if searched and not result.connected:
            continue
        path, losses = runs.pair(i, t, horizon)
        context_loss = lambda p, k=runs.instance_keys[i]: loss(p, k)
        start, end = geometry.first_and_last(path)
        points, levels = _target_points(
            options, path, losses, result, schedules[j] if schedules else None, context_loss, slack
        )
        shortened = result.rounds > 0
        before = (
            result.length_before / result.endpoint_distance
            if result.endpoint_distance > 0
            else np.nan
        )
        rows.append(
            (
                losses[0],
                losses[-1],
                result.normalized_length,
                i,
                t,
                before,
                geometry.chord_deviation(result.beads),
                geometry.chord_break_fraction(context_loss, start, end, losses),
                result.num_beads,
                float(result.converged) if shortened else np.nan,
                float(result.rounds) if shortened else np.nan,
                result.criterion,
                float(
                    geometry.chord_keeps_pace(
                        context_loss, start, end, geometry.teacher_levels(losses) * slack
                    )
                ),
                levels,
                np.asarray(jax.vmap(context_loss)(points)),
            )
        )
        starts.append(start)
        targets.append(points)
    uncertified = len(results) - len(rows)
    if not rows:
        raise NoCertifiedPairs(
            f"no pair was certified ({uncertified} failed path searches, "
            f"{not_descending} not descending): raise the budgets or lower the horizon"
        )
    columns = [np.array(c) for c in zip(*rows)]
    timing = "index" if options.schedule == "teacher" and searched else options.timing
    return TargetSet(
        stack(starts),
        stack(targets),
        *columns[:3],
        runs.instance_keys[columns[3]],
        columns[4],
        uncertified,
        not_descending,
        family.name,
        options.schedule,
        timing,
        *columns[5:8],
        columns[8].astype(np.int32),
        path=options.path,
        converged=columns[9],
        shortening_rounds=columns[10],
        convergence_criteria=columns[11],
        chord_keeps_pace=columns[12],
        target_levels=columns[13],
        target_losses=columns[14],
    )


def target_point(target_set: TargetSet, pair: int, k: int) -> PyTree:
    """The k-th target point (k = 1..T) of pair `pair`."""
    return jax.tree_util.tree_map(lambda x: x[k - 1], bead(target_set.targets, pair))
