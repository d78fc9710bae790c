"""Dynamic String Sampling: connecting two points inside a level set by a chain of beads.

The recursion runs breadth-first: at each level every unverified segment is
measured in one vmapped call, and every segment whose interpolated loss exceeds
the threshold gets a new bead; all beads of a level are trained together in one
vmapped, jitted call, so the number of compiled calls grows with the recursion
depth rather than with the number of beads. (On a CPU with small networks the
host work per bead still dominates; see BENCHMARKS.md.)

References:
  Freeman & Bruna, "Topology and geometry of half-rectified network
  optimization", ICLR 2017: Algorithm 1 and section 6.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from geodesic_targets.beads import BeadTraining
from geodesic_targets.interpolation import grid, lerp, segment_barriers
from geodesic_targets.options import ConnectOptions, Method
from geodesic_targets.paths import endpoint_distance, path_length, stack

PyTree = Any


@dataclasses.dataclass(frozen=True)
class PathResult:
    """The outcome of a string search.

    Attributes:
      connected: every neighbouring pair's interpolated loss, on the grid, is at or
        below the threshold. Never True otherwise.
      reason: why the search stopped.
      beads: the chain, params stacked along axis 0 (ends included).
      segment_max_losses: maximum interpolated loss of each segment [num_beads - 1]
        (NaN for a segment not measured when the search stopped).
      max_interpolated_loss: the largest of them.
      threshold: the level lambda.
      num_beads: beads in the chain, ends included.
      depth: recursion levels used.
      path_length: sum of bead-to-bead distances.
      endpoint_distance: Euclidean distance between the ends.
      normalized_length: path_length / endpoint_distance.
      training_steps: bead training steps summed over beads.
      timings: seconds spent measuring segments, training beads, and in total.
    """

    connected: bool
    reason: str
    beads: PyTree
    segment_max_losses: np.ndarray
    max_interpolated_loss: float
    threshold: float
    num_beads: int
    depth: int
    path_length: float
    endpoint_distance: float
    normalized_length: float
    training_steps: int
    timings: dict[str, float]


def _pad(items: list, size: int) -> list:
    return items + [items[0]] * (size - len(items))


def _bucket(n: int) -> int:
    """Batch sizes are rounded up to powers of two so that compiled calls are reused."""
    return 1 << max(n - 1, 0).bit_length()


def _stack_padded(items: list) -> PyTree:
    return stack(_pad(items, _bucket(len(items))))


class StringSampler:
    """Connects pairs of points for one loss; compiled functions are reused across calls.

    Args:
      loss_fn: the certifying loss `(params, context) -> scalar`, JAX-traceable and
        deterministic (a task's `eval_loss`, or anything else). `context` is what
        `connect(..., context=...)` passes (e.g. a task instance key), so many
        problems of one shape share one compilation.
      optimizer: optax optimizer that trains beads (default: Adam, learning rate 1e-2).
      options: budgets and choices.
      train_loss_fn: optional minibatch loss `(params, key, context) -> scalar` for
        bead training.
    """

    def __init__(self, loss_fn: Callable[[PyTree, Any], jax.Array],
                 optimizer: Optional[optax.GradientTransformation] = None,
                 options: ConnectOptions = ConnectOptions(),
                 train_loss_fn: Optional[Callable[[PyTree, jax.Array, Any], jax.Array]] = None):
        self.options = options
        self.ts = grid(options.num_grid)
        training = BeadTraining(loss_fn, optimizer or optax.adam(1e-2), options.max_steps,
                                options.method, options.pull, train_loss_fn)
        self._loss = jax.jit(loss_fn)
        self._barriers = jax.jit(lambda lefts, rights, context: segment_barriers(
            lambda p: loss_fn(p, context), lefts, rights, self.ts))
        self._train = jax.jit(training.train_many)

    def _measure(self, beads: list, segments: list[int], context) -> tuple[np.ndarray, np.ndarray]:
        lefts = _stack_padded([beads[i] for i in segments])
        rights = _stack_padded([beads[i + 1] for i in segments])
        maxima, argmax_ts = self._barriers(lefts, rights, context)
        return np.asarray(maxima)[:len(segments)], np.asarray(argmax_ts)[:len(segments)]

    def _train_beads(self, starts, lefts, rights, keys, target, context):
        if self.options.batched:
            batches = [list(range(len(starts)))]
        else:
            batches = [[i] for i in range(len(starts))]
        beads, losses, steps = [], [], []
        for batch in batches:
            out = self._train(_stack_padded([starts[i] for i in batch]),
                              _stack_padded([lefts[i] for i in batch]),
                              _stack_padded([rights[i] for i in batch]),
                              jnp.stack(_pad([keys[i] for i in batch], _bucket(len(batch)))), target,
                              context)
            out = jax.block_until_ready(out)
            beads += [jax.tree_util.tree_map(lambda x: x[j], out[0]) for j in range(len(batch))]
            losses += list(np.asarray(out[1])[:len(batch)])
            steps += list(np.asarray(out[2])[:len(batch)])
        return beads, np.array(losses), np.array(steps)

    def connect(self, theta_a: PyTree, theta_b: PyTree, threshold: float, *,
                key: jax.Array, context: Any = None) -> PathResult:
        """Searches for a chain from theta_a to theta_b inside {loss <= threshold}.

        Args:
          theta_a, theta_b: the ends, params pytrees.
          threshold: the level lambda.
          key: PRNG key of bead training (bead j of the search uses fold_in(key, j)).
          context: passed to the losses (same structure and shapes on every call).

        Returns:
          The `PathResult`; `connected` is False with a reason when a budget ran out.
        """
        opts, start = self.options, time.perf_counter()
        timings = {"measure_s": 0.0, "train_s": 0.0}
        beads, verified = [theta_a, theta_b], [False]
        seg_max = np.full(1, np.nan)
        depth, inserted, total_steps, reason = 0, 0, 0, ""
        end_losses = [float(self._loss(theta_a, context)), float(self._loss(theta_b, context))]
        if max(end_losses) > threshold:
            reason = f"an end lies above the threshold (losses {end_losses[0]:.4g}, {end_losses[1]:.4g})"
        while not reason:
            pending = [i for i, ok in enumerate(verified) if not ok]
            tick = time.perf_counter()
            maxima, argmax_ts = self._measure(beads, pending, context)
            timings["measure_s"] += time.perf_counter() - tick
            for i, m in zip(pending, maxima):
                seg_max[i], verified[i] = m, bool(m <= threshold)
            failing = [(i, t) for i, m, t in zip(pending, maxima, argmax_ts) if m > threshold]
            if not failing:
                reason = "every segment is below the threshold"
                break
            if depth >= opts.max_depth:
                reason = f"depth budget ({opts.max_depth}) exhausted"
                break
            if inserted + len(failing) > opts.max_beads:
                reason = f"bead budget ({opts.max_beads}) exhausted"
                break
            at = lambda t: 0.5 if opts.insert_at == "midpoint" or opts.method == "constrained" else t
            starts = [lerp(beads[i], beads[i + 1], at(t)) for i, t in failing]
            keys = [jax.random.fold_in(key, inserted + j) for j in range(len(failing))]
            tick = time.perf_counter()
            new, losses, steps = self._train_beads(starts, [beads[i] for i, _ in failing],
                                                   [beads[i + 1] for i, _ in failing], keys,
                                                   jnp.float32(opts.alpha * threshold), context)
            timings["train_s"] += time.perf_counter() - tick
            total_steps += int(steps.sum())
            beads, verified, seg_max = _insert(beads, verified, seg_max, [i for i, _ in failing], new)
            inserted, depth = inserted + len(failing), depth + 1
            if np.any(losses > threshold):
                reason = (f"{int(np.sum(losses > threshold))} bead(s) stayed above the threshold "
                          f"after {opts.max_steps} training steps")
        timings["total_s"] = time.perf_counter() - start
        return _result(beads, seg_max, threshold, reason, depth, total_steps, timings)


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


def _result(beads, seg_max, threshold, reason, depth, steps, timings) -> PathResult:
    chain = stack(beads)
    length, distance = float(path_length(chain)), float(endpoint_distance(chain))
    connected = bool(np.all(seg_max <= threshold))  # NaN (unmeasured) compares False
    return PathResult(
        connected=connected, reason=reason, beads=chain, segment_max_losses=seg_max,
        max_interpolated_loss=float(np.nanmax(seg_max)) if np.any(np.isfinite(seg_max)) else float("nan"),
        threshold=float(threshold), num_beads=len(beads), depth=depth, path_length=length,
        endpoint_distance=distance,
        normalized_length=length / distance if distance > 0 else float("nan"),
        training_steps=steps, timings=timings)


def connect(loss_fn: Callable[[PyTree], jax.Array], theta_a: PyTree, theta_b: PyTree,
            threshold: float, *, key: jax.Array, method: Method = "greedy",
            optimizer: Optional[optax.GradientTransformation] = None,
            train_loss_fn: Optional[Callable[[PyTree, jax.Array], jax.Array]] = None,
            **options: Any) -> PathResult:
    """Connects theta_a and theta_b inside {loss_fn <= threshold} by Dynamic String Sampling.

    A one-call form of `StringSampler(...).connect(...)` for a loss `params -> scalar`
    (and a minibatch `train_loss_fn(params, key)`); `options` are the fields of
    `ConnectOptions` (alpha, num_grid, max_depth, max_beads, max_steps, insert_at, ...).
    Build a `StringSampler` instead to connect many pairs with one compilation.
    """
    train = None if train_loss_fn is None else (lambda p, k, _: train_loss_fn(p, k))
    sampler = StringSampler(lambda p, _: loss_fn(p), optimizer,
                            ConnectOptions(method=method, **options), train)
    return sampler.connect(theta_a, theta_b, threshold, key=key)
