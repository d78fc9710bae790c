"""Geodesic supervision targets for a learned optimizer.

A baseline optimizer runs on N task instances at once (vmap); every `horizon`
steps T its parameters are recorded. Each pair (theta_t, theta_{t+T}) with
F(theta_{t+T}) <= F(theta_t) = lambda is connected inside Omega(lambda) by
string sampling, and the chain is resampled at T points of equal arc length:
the path a learned optimizer starting at theta_t should follow in T steps.
Pairs that could not be certified are left out and counted.

References:
  The research proposal (`../shared/papers/research_proposal.txt`): "a natural
  target to update theta_a is to follow the geodesic in Omega_lambda relying
  theta_a to theta_b".
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from geodesic_targets.sampler import PathResult, StringSampler
from meta_opt.inner_step import init_carry, inner_step, task_objective
from geodesic_targets.options import ConnectOptions, TargetOptions
from geodesic_targets.paths import bead, load_path, resample, save_path, stack
from tasks.base import TaskFamily

PyTree = Any


class NoCertifiedPairs(ValueError):
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

    def save(self, path: str | os.PathLike) -> None:
        """Writes the set to a `.npz` file (atomic, no pickle)."""
        arrays = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name not in ("start_params", "targets")}
        save_path(path, {"start": self.start_params, "targets": self.targets}, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TargetSet":
        """Reads a set written by `save`; ValueError naming the file if it is not one."""
        tree, meta = load_path(path)
        missing = {f.name for f in dataclasses.fields(cls)} - {"start_params", "targets"} - set(meta)
        if missing or set(tree) != {"start", "targets"}:
            raise ValueError(f"{path}: not a TargetSet file (missing {sorted(missing)})")
        return cls(start_params=tree["start"], targets=tree["targets"], **meta)


def baseline_checkpoints(family: TaskFamily, baseline: optax.GradientTransformation,
                         options: TargetOptions, key: jax.Array):
    """Runs the baseline on every instance at once; returns params and eval losses every T steps.

    Returns:
      `(instance_keys [N, 2], checkpoints (leaves [N, C, ...]), losses [N, C])` with
      C = num_steps // horizon + 1 checkpoints at steps 0, T, 2T, ...
    """
    instance_key, init_key, batch_key = jax.random.split(key, 3)
    n = options.num_instances

    def trajectory(inst_key, init, batches):
        task = family.instance(inst_key)
        objective = task_objective(task)

        def step(carry, k):
            new_carry, _ = inner_step(objective, baseline, carry, k)
            return new_carry, carry.params

        final, history = jax.lax.scan(step, init_carry(baseline, task.init(init)),
                                      jax.random.split(batches, options.num_steps))
        history = jax.tree_util.tree_map(lambda h, f: jnp.concatenate([h, f[None]]), history, final.params)
        checkpoints = jax.tree_util.tree_map(lambda h: h[::options.horizon], history)
        return checkpoints, jax.vmap(task.eval_loss)(checkpoints)

    keys = jax.random.split(instance_key, n)
    run = jax.jit(jax.vmap(trajectory))
    checkpoints, losses = run(keys, jax.random.split(init_key, n), jax.random.split(batch_key, n))
    return keys, checkpoints, np.asarray(losses)


def generate_targets(family: TaskFamily, options: TargetOptions, connect_options: ConnectOptions,
                     *, key: jax.Array, baseline: Optional[optax.GradientTransformation] = None,
                     bead_optimizer: Optional[optax.GradientTransformation] = None,
                     on_pair: Optional[Callable[[PathResult], None]] = None) -> TargetSet:
    """Builds a `TargetSet` from baseline trajectories on `family` (see the module doc).

    Args:
      family: the task family; instances are drawn from `key`.
      options: instances, steps, horizon.
      connect_options: string-sampling budgets.
      key: PRNG key of everything.
      baseline: the optimizer whose trajectories are cut (default Adam, 1e-2).
      bead_optimizer: trains beads (default as `StringSampler`).
      on_pair: called after each string search (progress).

    Raises:
      NoCertifiedPairs: no pair was certified (raise the budgets or lower the horizon).
    """
    trajectory_key, bead_key = jax.random.split(key)
    keys, checkpoints, losses = baseline_checkpoints(family, baseline or optax.adam(1e-2), options,
                                                     trajectory_key)
    sampler = StringSampler(lambda params, k: family.instance(k).eval_loss(params), bead_optimizer,
                            connect_options)
    starts, targets, kept, uncertified, not_descending = [], [], [], 0, 0
    for i in range(options.num_instances):
        for c in range(losses.shape[1] - 1):
            level, end_loss = float(losses[i, c]), float(losses[i, c + 1])
            if end_loss > level:
                not_descending += 1
                continue
            ends = [jax.tree_util.tree_map(lambda x, j=j: x[i, j], checkpoints) for j in (c, c + 1)]
            result = sampler.connect(*ends, level * (1 + options.level_tolerance),
                                     key=jax.random.fold_in(bead_key, i * 10_000 + c), context=keys[i])
            if on_pair is not None:
                on_pair(result)
            if not result.connected:
                uncertified += 1
                continue
            points = resample(result.beads, options.horizon + 1)
            starts.append(ends[0])
            targets.append(jax.tree_util.tree_map(lambda x: x[1:], points))
            kept.append((level, end_loss, result.normalized_length, i, c * options.horizon))
    if not kept:
        raise NoCertifiedPairs(f"no pair was certified ({uncertified} failed string searches, "
                         f"{not_descending} not descending): raise the budgets or lower the horizon")
    levels, end_losses, lengths, instances, steps = (np.array(v) for v in zip(*kept))
    return TargetSet(stack(starts), stack(targets), levels, end_losses, lengths,
                     np.asarray(keys)[instances], steps, uncertified, not_descending, family.name)


def target_point(target_set: TargetSet, pair: int, k: int) -> PyTree:
    """The k-th target point (k = 1..T) of pair `pair`."""
    return jax.tree_util.tree_map(lambda x: x[k - 1], bead(target_set.targets, pair))
