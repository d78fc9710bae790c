"""Padded batches around the string sampler's compiled calls: measuring segments, training beads.

`StringSampler` (`geodesic_targets.sampler`) measures every pending segment of a
recursion level in one vmapped call and trains every new bead of a level in one
vmapped call. Batch sizes are rounded up to powers of two (padding repeats the first
item) so that one compilation serves every count up to the next power of two;
`measure_segments` and `train_beads` pad the inputs of the jitted functions and cut
the padding off their outputs, keeping that bookkeeping out of the search itself.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from common.pytree import PyTree
from geodesic_targets.paths import stack


def _pad(items: list, size: int) -> list:
    return items + [items[0]] * (size - len(items))


def _bucket(n: int) -> int:
    """Batch sizes are rounded up to powers of two so that compiled calls are reused."""
    return 1 << max(n - 1, 0).bit_length()


def _stack_padded(items: list) -> PyTree:
    return stack(_pad(items, _bucket(len(items))))


def measure_segments(
    excess_fn: Callable, beads: list, segments: list[int], levels: np.ndarray, context
):
    """`(max excess, t of it, max loss)` of the listed segments; `levels` [all segments, G].

    `excess_fn(lefts, rights, levels, context)` is the sampler's jitted, vmapped
    `segment_excess`.
    """
    lefts = _stack_padded([beads[i] for i in segments])
    rights = _stack_padded([beads[i + 1] for i in segments])
    rows = np.asarray(_pad([levels[i] for i in segments], _bucket(len(segments))))
    return tuple(np.asarray(x)[: len(segments)] for x in excess_fn(lefts, rights, rows, context))


def train_beads(train_fn: Callable, batched: bool, starts, lefts, rights, keys, targets, context):
    """Trains one bead per start: `(beads, final losses, steps)`, unpadded.

    `train_fn` is the sampler's jitted `BeadTraining.train_many`; with `batched` all
    beads go in one call, else one call per bead.
    """
    batches = [list(range(len(starts)))] if batched else [[i] for i in range(len(starts))]
    beads, losses, steps = [], [], []
    for batch in batches:
        out = train_fn(
            _stack_padded([starts[i] for i in batch]),
            _stack_padded([lefts[i] for i in batch]),
            _stack_padded([rights[i] for i in batch]),
            jnp.stack(_pad([keys[i] for i in batch], _bucket(len(batch)))),
            jnp.asarray(_pad([targets[i] for i in batch], _bucket(len(batch))), jnp.float32),
            context,
        )
        out = jax.block_until_ready(out)
        beads += [jax.tree_util.tree_map(lambda x, j=j: x[j], out[0]) for j in range(len(batch))]
        losses += list(np.asarray(out[1])[: len(batch)])
        steps += list(np.asarray(out[2])[: len(batch)])
    return beads, np.array(losses), np.array(steps)
