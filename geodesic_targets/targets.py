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
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from common.pytree import PyTree
from geodesic_targets import target_geometry as geometry
from geodesic_targets.level_schedule import LevelSchedule
from geodesic_targets.options import ConnectOptions, TargetOptions
from geodesic_targets.path_result import PathResult, describe_path
from geodesic_targets.paths import bead, stack
from geodesic_targets.sampler import StringSampler
from geodesic_targets.shortening import Shortener
from geodesic_targets.target_set import NoCertifiedPairs, TargetSet
from geodesic_targets.teacher import run_teacher
from tasks.base import TaskFamily

__all__ = ["NoCertifiedPairs", "Pair", "TargetSet", "generate_targets", "pair_key", "target_point"]


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
        Pair(i, c * horizon)
        for i in range(options.num_instances)
        for c in range(options.num_steps // horizon)
    ]
    final = lambda p: runs.losses[p.instance, p.start + horizon]
    descending = [p for p in pairs if final(p) <= runs.losses[p.instance, p.start]]
    if options.path != "level_set":
        schedules = [None] * len(descending)
        results = [_unsearched(runs.pair(*p, horizon), options.path, slack) for p in descending]
    elif options.schedule == "teacher":
        schedules, results = _teacher_paced(loss, runs, descending, options, connect_options)
    else:
        schedules, results = _searched(
            loss, runs, descending, options, connect_options, bead_optimizer, bead_key
        )
    for result in results:
        if on_pair is not None:
            on_pair(result)
    not_descending = len(pairs) - len(descending)
    return _target_set(family, options, runs, descending, results, schedules, not_descending, loss)


class Pair(NamedTuple):
    """A pair (theta_t, theta_{t+T}) of the teacher's runs: its instance and start step t."""

    instance: int
    start: int


def pair_key(key: jax.Array, pair: Pair, horizon: int) -> jax.Array:
    """The bead-training key of one pair: `key` folded with its instance, then its chunk t // T."""
    return jax.random.fold_in(jax.random.fold_in(key, pair.instance), pair.start // horizon)


def _teacher_paced(loss, runs, pairs, options, connect_options):
    """The teacher schedule: each teacher path shortened with point k held at the teacher's level k."""
    slack = 1 + options.level_tolerance
    schedules = [
        LevelSchedule.by_index(geometry.teacher_levels(runs.pair(*p, options.horizon)[1]) * slack)
        for p in pairs
    ]
    if not pairs:
        return schedules, []
    shortener = Shortener(loss, connect_options.shortening, by="index")
    paths = [runs.pair(*p, options.horizon)[0] for p in pairs]
    contexts = jnp.asarray(runs.instance_keys[[p.instance for p in pairs]])
    return schedules, shortener.shorten_many(paths, schedules, contexts)


def _searched(loss, runs, pairs, options, connect_options, bead_optimizer, bead_key):
    """The fraction schedules: a string search between each pair's ends, then (optionally) shortening."""
    slack = 1 + options.level_tolerance
    sampler = StringSampler(
        loss, bead_optimizer, dataclasses.replace(connect_options, shorten=False)
    )
    schedules, results = [], []
    for pair in pairs:
        path, losses = runs.pair(*pair, options.horizon)
        start_level, end_level = losses[0] * slack, losses[-1] * slack
        schedules.append(
            LevelSchedule.constant(start_level)
            if options.schedule == "constant"
            else LevelSchedule.linear(start_level, end_level)
        )
        results.append(
            sampler.connect(
                *geometry.first_and_last(path),
                schedules[-1],
                key=pair_key(bead_key, pair, options.horizon),
                context=runs.instance_keys[pair.instance],
            )
        )
    if connect_options.shorten:
        contexts = runs.instance_keys[[p.instance for p in pairs]]
        shortener = Shortener(loss, connect_options.shortening)
        results = _shorten_connected(shortener, results, schedules, contexts)
    return schedules, results


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
        points = jax.tree_util.tree_map(lambda x: x[1:], result.beads)
        return points, np.asarray(schedule.levels[1:])
    if options.timing == "schedule":
        points, fractions = geometry.timed_by_schedule(
            context_loss, result.beads, geometry.teacher_levels(losses)
        )
    else:
        points = geometry.at_equal_arc_length(result.beads, horizon)
        fractions = np.arange(1, horizon + 1) / horizon
    return points, np.interp(fractions, np.linspace(0, 1, len(schedule.levels)), schedule.levels)


def _pair_record(options, runs, pair, result, schedule, loss) -> dict[str, Any]:
    """One certified pair's entries of every `TargetSet` field, by field name."""
    slack = 1 + options.level_tolerance
    path, losses = runs.pair(*pair, options.horizon)
    context_loss = lambda p, k=runs.instance_keys[pair.instance]: loss(p, k)
    start, end = geometry.first_and_last(path)
    points, levels = _target_points(options, path, losses, result, schedule, context_loss, slack)
    shortened = result.rounds > 0
    distance = result.endpoint_distance
    pace = geometry.teacher_levels(losses) * slack
    return {
        "start_params": start,
        "targets": points,
        "levels": losses[0],
        "end_losses": losses[-1],
        "normalized_lengths": result.normalized_length,
        "instance_keys": runs.instance_keys[pair.instance],
        "start_steps": pair.start,
        "unshortened_lengths": result.length_before / distance if distance > 0 else np.nan,
        "chord_deviations": geometry.chord_deviation(result.beads),
        "chord_break_fractions": geometry.chord_break_fraction(context_loss, start, end, losses),
        "num_beads": np.int32(result.num_beads),
        "converged": float(result.converged) if shortened else np.nan,
        "shortening_rounds": float(result.rounds) if shortened else np.nan,
        "convergence_criteria": result.criterion,
        "chord_keeps_pace": float(geometry.chord_keeps_pace(context_loss, start, end, pace)),
        "target_levels": levels,
        "target_losses": np.asarray(jax.vmap(context_loss)(points)),
    }


def _target_set(
    family, options, runs, pairs, results, schedules, not_descending, loss
) -> TargetSet:
    searched = options.path == "level_set"  # teacher and chord paths are used as they are
    records = [
        _pair_record(options, runs, pair, result, schedule, loss)
        for pair, result, schedule in zip(pairs, results, schedules)
        if result.connected or not searched
    ]
    uncertified = len(results) - len(records)
    if not records:
        raise NoCertifiedPairs(
            f"no pair was certified ({uncertified} failed path searches, "
            f"{not_descending} not descending): raise the budgets or lower the horizon"
        )
    trees = {name: stack([r[name] for r in records]) for name in ("start_params", "targets")}
    arrays = {
        name: np.array([r[name] for r in records]) for name in records[0] if name not in trees
    }
    return TargetSet(
        **trees,
        **arrays,
        num_uncertified=uncertified,
        num_not_descending=not_descending,
        task=family.name,
        schedule=options.schedule,
        timing="index" if options.schedule == "teacher" and searched else options.timing,
        path=options.path,
    )


def target_point(target_set: TargetSet, pair: int, k: int) -> PyTree:
    """The k-th target point (k = 1..T) of pair `pair`."""
    return jax.tree_util.tree_map(lambda x: x[k - 1], bead(target_set.targets, pair))
