"""Where the curvature is: Hessian spectra at trajectory points, beads and segment high points.

Dauphin et al. (2014) argue that the critical points which slow training in high
dimensions are saddles whose index (fraction of negative Hessian eigenvalues) grows
with the loss. This module gathers the points to test that on and measures them:
points along an optimizer's trajectory, the beads of a string, and the highest
point of each segment between beads (where a linear path is most likely to cross
a ridge). A point is a saddle only where its gradient is also small, so the gradient
norm is measured beside the spectrum.

References:
  Dauphin, Pascanu, Gulcehre, Cho, Ganguli & Bengio, "Identifying and attacking
  the saddle point problem in high-dimensional non-convex optimization", NIPS 2014
  (figure 1: index against training error).
  Freeman & Bruna, "Topology and geometry of half-rectified network optimization",
  ICLR 2017.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from common.pytree import PyTree
from geodesic_targets.interpolation import lerp, segment_barriers
from geodesic_targets.options import SpectrumOptions
from geodesic_targets.paths import stack
from geodesic_targets.spectrum import spectra_at
from meta_opt.inner_step import init_carry, inner_step

LossFn = Callable[[PyTree], jax.Array]


def segment_high_points(
    loss_fn: LossFn, beads: PyTree, num_grid: int
) -> tuple[PyTree, jax.Array, jax.Array]:
    """The highest grid point of every segment of a chain.

    Args:
      loss_fn: params -> scalar loss.
      beads: the chain, stacked along axis 0 (ends included).
      num_grid: points of t in [0, 1] searched on each segment.

    Returns:
      `(points [S], ts [S], losses [S])` for the S = num_beads - 1 segments.
    """
    lefts = jax.tree_util.tree_map(lambda x: x[:-1], beads)
    rights = jax.tree_util.tree_map(lambda x: x[1:], beads)
    losses, ts = segment_barriers(loss_fn, lefts, rights, jnp.linspace(0.0, 1.0, num_grid))
    points = jax.vmap(lerp)(lefts, rights, ts)
    return points, ts, losses


def record_trajectory(
    objective: Callable[[PyTree, jax.Array], jax.Array],
    optimizer: optax.GradientTransformation,
    params: PyTree,
    *,
    key: jax.Array,
    num_steps: int,
    num_points: int,
) -> tuple[PyTree, np.ndarray]:
    """The parameters of one optimizer run at `num_points` evenly spaced steps (0 and the last included).

    Args:
      objective: `(params, key) -> minibatch loss`.
      optimizer: any optax transformation (curvature optimizers get `value_fn`).
      params: the start.
      key: draws the minibatches.
      num_steps: steps of the run.
      num_points: points recorded, >= 2.

    Returns:
      `(points stacked along axis 0 [num_points], the step of each point)`.
    """
    if num_points < 2 or num_steps < 1:
        raise ValueError(f"need num_points >= 2 and num_steps >= 1, got {num_points}, {num_steps}")
    steps = np.unique(np.round(np.linspace(0, num_steps, num_points)).astype(int))
    carry, points = init_carry(optimizer, params), [params]
    keys = jax.random.split(key, num_steps)
    for t in range(1, num_steps + 1):
        carry = _step(objective, optimizer, carry, keys[t - 1])
        if t in steps:
            points.append(carry.params)
    return stack(points), steps


@functools.partial(jax.jit, static_argnums=(0, 1))  # compiled once per objective and optimizer
def _step(objective, optimizer, carry, key):
    return inner_step(objective, optimizer, carry, key)[0]


def measure_points(
    loss_fn: LossFn, points: PyTree, *, key: jax.Array, options: SpectrumOptions
) -> dict[str, np.ndarray]:
    """Loss, gradient norm and Hessian spectrum summaries at P stacked points.

    The points are measured `options.chunk` at a time (one vmapped Lanczos call per
    chunk; memory grows with chunk x num_probes x num_iterations x parameters).

    Returns:
      numpy arrays [P]: "loss", "grad_norm", "smallest", "largest" (extreme Ritz values)
      and "index" (fraction of eigenvalues below -epsilon, or -epsilon x the largest
      |eigenvalue| with `options.relative_epsilon`; `spectrum.spectra_at`).
    """
    num_points = jax.tree_util.tree_leaves(points)[0].shape[0]
    rows: dict[str, list] = {
        name: [] for name in ("loss", "grad_norm", "smallest", "largest", "index")
    }
    for start in range(0, num_points, options.chunk):
        # every chunk padded to `chunk` points (the last one repeated): one compilation for all
        take = np.minimum(np.arange(start, start + options.chunk), num_points - 1)
        chunk = jax.tree_util.tree_map(lambda x, take=take: x[take], points)
        measured = _measure_chunk(loss_fn, chunk, jax.random.fold_in(key, start), options)
        for name, values in measured.items():
            rows[name].append(np.asarray(values, np.float64)[: num_points - start])
    return {name: np.concatenate(values) for name, values in rows.items()}


@functools.partial(jax.jit, static_argnums=(0, 3))
def _measure_chunk(
    loss_fn: LossFn, chunk: PyTree, key: jax.Array, options: SpectrumOptions
) -> dict[str, jax.Array]:
    losses, grads = jax.vmap(jax.value_and_grad(loss_fn))(chunk)
    norms = jnp.sqrt(
        sum(
            jnp.sum(g.reshape(g.shape[0], -1) ** 2, axis=1)
            for g in jax.tree_util.tree_leaves(grads)
        )
    )
    summary = spectra_at(
        loss_fn,
        chunk,
        key=key,
        num_iterations=options.num_iterations,
        num_probes=options.num_probes,
        epsilon=options.epsilon,
        relative=options.relative_epsilon,
    )
    return {"loss": losses, "grad_norm": norms, **summary}


def index_loss_fit(losses: np.ndarray, indices: np.ndarray) -> dict[str, float]:
    """Least-squares line index = slope * loss + intercept, with the correlation coefficient.

    Dauphin et al.'s claim, as a number: a positive slope (the index grows with the
    loss). Returns nan entries for fewer than 3 points or a constant loss.
    """
    losses, indices = np.asarray(losses, np.float64), np.asarray(indices, np.float64)
    if losses.size < 3 or np.ptp(losses) == 0:
        return {
            "slope": float("nan"),
            "intercept": float("nan"),
            "correlation": float("nan"),
            "points": int(losses.size),
        }
    slope, intercept = np.polyfit(losses, indices, 1)
    spread = np.std(indices)
    correlation = float(np.corrcoef(losses, indices)[0, 1]) if spread > 0 else float("nan")
    return {
        "slope": float(slope),
        "intercept": float(intercept),
        "correlation": correlation,
        "points": int(losses.size),
    }
