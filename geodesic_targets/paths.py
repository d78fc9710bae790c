"""Paths between parameter pytrees: chains of beads stacked along a leading axis.

A path of n beads is ONE pytree whose leaves share a leading axis of length n (bead 0
is θa, bead n-1 is θb), e.g. {"w": [n, 3, 4], "b": [n, 4]}, piecewise linear between
beads. Distances are Euclidean over all leaves together, in at least float32.

References:
  Freeman & Bruna, "Topology and geometry of half-rectified network optimization", ICLR 2017.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from common import npz_tree
from common.pytree import PyTree


def _num_beads(beads: PyTree, minimum: int = 2) -> int:  # the static leading size of all leaves
    sizes = {jnp.shape(x)[:1] for x in jax.tree.leaves(beads)}
    if len(sizes) != 1 or () in sizes or next(iter(sizes))[0] < minimum:
        raise ValueError(
            f"need leaves with one common leading (bead) axis >= {minimum}; got {sizes}"
        )
    return next(iter(sizes))[0]


def _distances(beads: PyTree, hi: slice, lo: slice) -> jax.Array:
    """Norms over all leaves of beads[hi] - beads[lo]; zero gradient (not NaN) at 0."""
    _num_beads(beads)
    sq = 0.0
    for x in jax.tree.leaves(beads):
        x = jnp.asarray(x, jnp.promote_types(jnp.result_type(x), jnp.float32))
        sq = sq + jnp.sum((x[hi] - x[lo]) ** 2, axis=tuple(range(1, x.ndim)))
    return jnp.where(sq > 0, jnp.sqrt(jnp.where(sq > 0, sq, 1.0)), 0.0)


def segment_lengths(beads: PyTree) -> jax.Array:
    """Distances between consecutive beads, [n-1]."""
    return _distances(beads, slice(1, None), slice(None, -1))


def path_length(beads: PyTree) -> jax.Array:
    """Length of the piecewise-linear path through the beads, [] float."""
    return jnp.sum(segment_lengths(beads))


def endpoint_distance(beads: PyTree) -> jax.Array:
    """Euclidean distance between the first and the last bead, [] float."""
    return _distances(beads, slice(-1, None), slice(None, 1))[0]


def normalized_length(beads: PyTree) -> jax.Array:
    """Normalized geodesic length: path length / endpoint distance (1 for a straight path).

    Raises:
      ValueError: if the endpoints coincide and the call is eager; under tracing (jit,
        vmap) the check cannot run and coinciding endpoints give +inf.
    """
    length, dist = path_length(beads), endpoint_distance(beads)
    if not isinstance(dist, jax.core.Tracer) and dist == 0:
        raise ValueError("normalized_length: the endpoints coincide (endpoint distance 0)")
    return jnp.where(dist > 0, length / jnp.where(dist > 0, dist, 1.0), jnp.inf)


def _lerp(a: jax.Array, b: jax.Array, t: jax.Array) -> jax.Array:  # t [k]; a, b [k or 1, ...]
    t = t.astype(jnp.result_type(a, b, 0.0)).reshape((-1,) + (1,) * (a.ndim - 1))
    return (1 - t) * a + t * b


def resample(beads: PyTree, num_points: int) -> PyTree:
    """Points at equal arc length along the piecewise-linear path: leaves [num_points, ...].

    Zero-length segments (repeated beads) give no NaN; the first and last points are
    exactly the end beads. Jit-compatible with static `num_points` (>= 2).
    """
    n = _num_beads(beads)
    if num_points < 2:
        raise ValueError(f"resample needs num_points >= 2, got {num_points}")
    seg = segment_lengths(beads)
    cum = jnp.concatenate([jnp.zeros(1, seg.dtype), jnp.cumsum(seg)])
    targets = jnp.linspace(0.0, cum[-1], num_points)
    idx = jnp.clip(jnp.searchsorted(cum, targets, side="right") - 1, 0, n - 2)
    pos = seg[idx] > 0
    frac = jnp.clip(jnp.where(pos, (targets - cum[idx]) / jnp.where(pos, seg[idx], 1.0), 0.0), 0, 1)

    def per_leaf(x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        return _lerp(x[idx], x[idx + 1], frac).at[0].set(x[0]).at[-1].set(x[-1])

    return jax.tree.map(per_leaf, beads)


def interpolate_stack(theta_a: PyTree, theta_b: PyTree, ts: jax.typing.ArrayLike) -> PyTree:
    """(1 - t) θa + t θb for each t of the 1-D `ts`, stacked: leaves [len(ts), ...]."""
    ts = jnp.asarray(ts)
    if ts.ndim != 1 or jax.tree.map(jnp.shape, theta_a) != jax.tree.map(jnp.shape, theta_b):
        raise ValueError(f"need 1-D ts (got shape {ts.shape}) and theta_a, theta_b of equal shapes")
    return jax.tree.map(
        lambda a, b: _lerp(jnp.asarray(a)[None], jnp.asarray(b)[None], ts), theta_a, theta_b
    )


def stack(trees: Sequence[PyTree]) -> PyTree:
    """Stacks same-structured pytrees (at least one) along a new leading (bead) axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def bead(stacked: PyTree, i: int | jax.Array) -> PyTree:
    """Bead `i` of a stacked path (negative indices count from the end)."""
    return jax.tree.map(lambda x: jnp.asarray(x)[i], stacked)


def unstack(stacked: PyTree) -> list[PyTree]:
    """The beads of a stacked path as a list of pytrees (inverse of `stack`)."""
    return [bead(stacked, i) for i in range(_num_beads(stacked, minimum=0))]


def save_path(path: str | os.PathLike, beads: PyTree, /, **metadata: Any) -> None:
    """Writes a path and metadata to the `.npz` file `path` (name as given), atomically.

    Leaves go under "beads/<k1>/<k2>..." (dict keys, sequence indices, attribute names;
    a bare array: "beads"), metadata (numbers, strings, arrays; no object or bfloat16)
    under "meta/<name>" (`common.npz_tree`). `load_path` returns all containers as
    dicts with string keys (exact for Haiku params).
    """
    _num_beads(beads, minimum=0)  # some leaves, one bead axis
    arrays = npz_tree.encode({"beads": beads, "meta": metadata})
    npz_tree.decode(arrays, f"<path to save at {path}>")  # no key clashes
    npz_tree.write_npz(path, arrays)


def load_path(path: str | os.PathLike) -> tuple[PyTree, dict[str, Any]]:
    """Reads a file written by `save_path` (with `allow_pickle=False`).

    Returns:
      (beads, metadata): beads as nested dicts of numpy arrays (or one array); 0-d
      metadata as Python scalars (int, float, str, bool), the rest as numpy arrays.

    Raises:
      ValueError: naming the file if it is corrupt, truncated or not a path file.
    """
    tree = npz_tree.decode(npz_tree.read_npz(path), str(path))
    meta = tree.get("meta", {})
    if "beads" not in tree or set(tree) - {"beads", "meta"} or not isinstance(meta, dict):
        raise ValueError(f"{path}: not a path file (top-level keys {sorted(tree)})")
    return tree["beads"], jax.tree.map(lambda v: v.item() if v.ndim == 0 else v, meta)
