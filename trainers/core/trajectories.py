"""Inner-loop runs of any optimizer over many seeds (and hyperparameter settings) at once.

One function of (hyperparameters, seed key) runs a fresh task instance for a fixed
number of steps and records its training loss; `vmap` over seeds and, for tuning,
over a grid of hyperparameters turns a whole baseline sweep into one compiled call.
Hyperparameters enter as traced arrays, so every value of a grid shares one
compilation; the optimizer is built inside the traced function from them.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from meta_opt.inner_step import init_carry, inner_step, task_objective
from tasks.base import TaskFamily
from trainers.core import sharding

Hparams = Mapping[str, jax.Array]
BuildOptimizer = Callable[[Hparams], optax.GradientTransformation]


@dataclasses.dataclass(frozen=True)
class Trajectories:
    """Recorded runs; leading axes [G, K] (grid settings, seeds), numpy arrays.

    Attributes:
      steps: the inner steps at which `curves` were recorded, [P] (0 and the last included).
      curves: the training loss (`Task.eval_loss`, the fixed training subset) at `steps`, [G, K, P].
      batch_losses: the minibatch loss of every step, [G, K, num_steps].
      metrics: the task's extra measurements after the last step (test loss, accuracy), each [G, K].
      seconds: wall time of the compiled call that ran them all (compilation excluded).
    """

    steps: np.ndarray
    curves: np.ndarray
    batch_losses: np.ndarray
    metrics: Mapping[str, np.ndarray]
    seconds: float = math.nan

    @property
    def final_losses(self) -> np.ndarray:
        """The training loss after the last step, [G, K]."""
        return self.curves[..., -1]


def record_schedule(num_steps: int, record_points: int) -> tuple[int, int, int]:
    """`(every, chunks, remainder)`: record every `every` steps, `chunks` times, then `remainder` more."""
    if num_steps < 1 or record_points < 1:
        raise ValueError(
            f"need num_steps >= 1 and record_points >= 1, got {num_steps}, {record_points}"
        )
    every = math.ceil(num_steps / record_points)
    return every, num_steps // every, num_steps % every


def recorded_steps(num_steps: int, record_points: int) -> np.ndarray:
    """The steps `run_grid` records the training loss at: 0, every, 2 every, ..., num_steps."""
    every, chunks, remainder = record_schedule(num_steps, record_points)
    steps = list(range(0, chunks * every + 1, every))
    return np.asarray(steps + ([num_steps] if remainder else []))


def make_run(
    family: TaskFamily, build: BuildOptimizer, num_steps: int, record_points: int = 50
) -> Callable[[Hparams, jax.Array], dict[str, jax.Array]]:
    """`run(hparams, key)`: one fresh instance trained for `num_steps` by `build(hparams)`.

    The key selects the task instance, the initial parameters and the minibatches.
    Optimizers get `value_fn` (the minibatch loss) so curvature methods (ESGD) can probe it.

    Returns:
      A pure function returning `{"curve": [P], "batch_losses": [num_steps], "metrics": {...}}`.
    """
    every, chunks, remainder = record_schedule(num_steps, record_points)

    def run(hparams: Hparams, key: jax.Array) -> dict[str, Any]:
        tx = build(hparams)
        instance_key, init_key, batch_key = jax.random.split(key, 3)
        task = family.instance(instance_key)
        objective = task_objective(task)
        step = lambda carry, step_key: inner_step(objective, tx, carry, step_key)

        def chunk(carry, chunk_keys):
            carry, losses = jax.lax.scan(step, carry, chunk_keys)
            return carry, (task.eval_loss(carry.params), losses)

        step_keys = jax.random.split(batch_key, num_steps)
        carry = init_carry(tx, task.init(init_key))
        curve = [task.eval_loss(carry.params)[None]]
        carry, (chunk_losses, batch_losses) = jax.lax.scan(
            chunk, carry, step_keys[: chunks * every].reshape(chunks, every, *step_keys.shape[1:])
        )
        curve.append(chunk_losses)
        batch_losses = [batch_losses.reshape(-1)]
        if remainder:
            carry, tail = jax.lax.scan(step, carry, step_keys[chunks * every :])
            curve.append(task.eval_loss(carry.params)[None])
            batch_losses.append(tail)
        return {
            "curve": jnp.concatenate(curve),
            "batch_losses": jnp.concatenate(batch_losses),
            "metrics": dict(task.metrics(carry.params)),
        }

    return run


def run_grid(
    family: TaskFamily,
    build: BuildOptimizer,
    grid: Hparams,
    keys: jax.Array,
    num_steps: int,
    record_points: int = 50,
    parallel_runs: int = 0,
) -> Trajectories:
    """Runs every grid setting on every seed in one compiled, vmapped call.

    Args:
      family: the task family.
      build: hyperparameters -> optimizer; called under tracing.
      grid: hyperparameter name -> values (arrays or pytrees of arrays), all with a
        leading axis of length G (one setting per index); empty for an optimizer without
        hyperparameters (then G = 1).
      keys: seed keys [K] (`jax.random.split`), one run each per setting; the G x K runs
        are split over all devices when their number is a multiple of the device count.
      num_steps: inner steps per run.
      record_points: about this many training-loss measurements per run.
      parallel_runs: at most this many runs at once (`jax.lax.map` over vmapped batches),
        to bound memory; 0: all G x K runs in one vmap.
    """
    run = make_run(family, build, num_steps, record_points)
    mesh = sharding.task_mesh()
    num_seeds = keys.shape[0]
    leaves = jax.tree_util.tree_leaves(grid)  # a setting may be a pytree (e.g. meta-parameters)
    num_settings = leaves[0].shape[0] if leaves else 1
    # One vmap over every (setting, seed) pair rather than a vmap of vmaps: the gradient of
    # a convolution batched twice is a grouped convolution jax cannot batch again once its
    # operands carry a sharding (NotImplementedError in conv_general_dilated's batch rule).
    flat_grid = jax.tree_util.tree_map(
        lambda v: jnp.repeat(jnp.asarray(v), num_seeds, axis=0), dict(grid)
    )
    flat_keys = keys[jnp.tile(jnp.arange(num_seeds), num_settings)]
    if (num_settings * num_seeds) % mesh.size == 0:  # runs split over all devices
        flat_grid, flat_keys = sharding.shard_tasks((flat_grid, flat_keys), mesh)
    if 0 < parallel_runs < num_settings * num_seeds:
        every_run = lambda xs: jax.lax.map(lambda x: run(*x), xs, batch_size=parallel_runs)
    else:
        every_run = jax.vmap(lambda x: run(*x))
    compiled = jax.jit(every_run).lower((flat_grid, flat_keys)).compile()
    start = time.perf_counter()
    flat = jax.block_until_ready(compiled((flat_grid, flat_keys)))
    seconds = time.perf_counter() - start
    out = jax.tree_util.tree_map(lambda x: x.reshape(num_settings, num_seeds, *x.shape[1:]), flat)
    out = jax.device_get(out)
    return Trajectories(
        recorded_steps(num_steps, record_points),
        np.asarray(out["curve"]),
        np.asarray(out["batch_losses"]),
        {name: np.asarray(v) for name, v in out["metrics"].items()},
        seconds,
    )
