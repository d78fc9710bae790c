"""Energy sweeps: normalized geodesic length and bead count against the level lambda.

Pairs of independently initialized models are trained down to each level (the
levels in decreasing order, each pair continuing from the previous level), then
connected inside Omega(lambda) by string sampling. This reproduces the figures
of Freeman & Bruna: on the cubic regression the normalized length is well above
1 at low loss; on MNIST it stays near 1.0-1.07.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from geodesic_targets.beads import descend_until
from geodesic_targets.options import ConnectOptions, SweepOptions
from geodesic_targets.sampler import StringSampler
from meta_opt.inner_step import task_objective
from tasks.base import Task


@dataclasses.dataclass(frozen=True)
class LevelResult:
    """One level of a sweep.

    Normalized length and beads: mean and standard error over connected pairs (with
    shortening, the length after it and the beads string sampling placed before it;
    the unshortened length is then recorded too, else nan).
    Test error: mean over the ends of every pair that reached the level.
    Distance: mean and standard error of the ends' Euclidean distance over those pairs
    (after alignment with `ConnectOptions.align`; the distance before it is then recorded too).
    `failures` says why each unconnected pair was not connected. With shortening,
    `pairs_shortened` connected pairs were shortened and `pairs_converged` of them met the
    convergence criterion (`geodesic_targets.shortening`).
    """

    level: float
    pairs_tried: int
    pairs_connected: int
    pairs_unreached: int
    normalized_length_mean: float
    normalized_length_se: float
    beads_mean: float
    beads_se: float
    test_error_mean: float
    seconds: float
    failures: tuple[str, ...] = ()
    unshortened_length_mean: float = float("nan")
    unshortened_length_se: float = float("nan")
    distance_mean: float = float("nan")
    distance_se: float = float("nan")
    unaligned_distance_mean: float = float("nan")
    pairs_shortened: int = 0
    pairs_converged: int = 0


def _mean_se(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    spread = float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
    return float(np.mean(values)), spread


def energy_sweep(
    task: Task,
    options: SweepOptions,
    connect_options: ConnectOptions,
    *,
    key: jax.Array,
    train_optimizer: optax.GradientTransformation,
    bead_optimizer: optax.GradientTransformation | None = None,
    on_level: Callable[[LevelResult], None] | None = None,
) -> list[LevelResult]:
    """Sweeps the levels of `options` on `task`.

    Args:
      task: the problem; `eval_loss` defines the level sets, `loss` on minibatches
        trains the models.
      options: levels, pairs and training budget.
      connect_options: string-sampling budgets.
      key: PRNG key of model inits, minibatches and bead training.
      train_optimizer: trains the pairs down to each level.
      bead_optimizer: trains the beads (default as `StringSampler`).
      on_level: called with each level's result as soon as it is done (progress).

    Returns:
      One `LevelResult` per level, highest level first.
    """
    init_key, train_key, bead_key = jax.random.split(key, 3)
    models = jax.vmap(task.init)(jax.random.split(init_key, 2 * options.num_pairs))
    objective = task_objective(task)

    @jax.jit
    def train_to(models, level, keys):
        one = lambda start, k: descend_until(
            objective, task.eval_loss, train_optimizer, start, level, options.max_train_steps, k
        )
        return jax.vmap(one)(models, keys)

    sampler = StringSampler(
        lambda params, _: task.eval_loss(params), bead_optimizer, connect_options
    )
    error = jax.jit(lambda p: 1.0 - task.metrics(p).get("test_accuracy", jnp.nan))
    results = []
    for index, level in enumerate(sorted(options.levels, reverse=True)):
        tick = time.perf_counter()
        keys = jax.random.split(jax.random.fold_in(train_key, index), 2 * options.num_pairs)
        models, losses, _ = train_to(models, jnp.float32(level), keys)
        reached = np.asarray(losses) <= level
        lengths, beads, unshortened, errors, unreached, failures = [], [], [], [], 0, []
        distances, unaligned, converged = [], [], []
        for pair in range(options.num_pairs):
            a, b = 2 * pair, 2 * pair + 1
            if not (reached[a] and reached[b]):
                unreached += 1
                continue
            ends = [jax.tree_util.tree_map(lambda x, i=i: x[i], models) for i in (a, b)]
            result = sampler.connect(
                *ends, level, key=jax.random.fold_in(bead_key, 1000 * index + pair)
            )
            errors += [100 * float(error(end)) for end in ends]
            distances.append(result.endpoint_distance)
            unaligned.append(result.unaligned_distance)
            if result.connected:
                lengths.append(result.normalized_length)
                beads.append(result.beads_before or result.num_beads)
                unshortened.append(result.length_before / result.endpoint_distance)
                if result.rounds:
                    converged.append(result.converged)
            else:
                failures.append(f"pair {pair}: {result.reason}")
        results.append(
            LevelResult(
                float(level),
                options.num_pairs,
                len(lengths),
                unreached,
                *_mean_se(lengths),
                *_mean_se([float(b) for b in beads]),
                float(np.mean(errors)) if errors else float("nan"),
                time.perf_counter() - tick,
                tuple(failures),
                *_mean_se([u for u in unshortened if np.isfinite(u)]),
                *_mean_se(distances),
                _mean_se([u for u in unaligned if np.isfinite(u)])[0],
                len(converged),
                int(sum(converged)),
            )
        )
        if on_level is not None:
            on_level(results[-1])
    return results
