"""Permutation alignment of hidden units by weight matching.

Permuting the hidden units of a network (the output columns of one dense layer,
its bias and the input rows of the next) leaves the function it computes unchanged,
so two independently trained networks can be far apart in parameter space only
because their units are listed in different orders. Aligning the second network's
units to the first's removes this symmetry before a string (Freeman & Bruna) is
sampled between them.

Weight matching chooses one permutation P_l per hidden layer to maximize
sum_l <W_a^l, P_l W_b^l P_{l-1}^T> + <b_a^l, P_l b_b^l>, the inner product of the
two parameter trees, which is the same as minimizing their L2 distance. It is solved
by coordinate ascent: each P_l in turn is the linear assignment that is optimal with
its neighbours held fixed, until no layer improves. Alignment runs on host numpy
with scipy and is not meant to be traced.

Parameter trees are haiku-style dicts of dense modules, `{name: {'w': [in, out],
'b': [out]}}`, forming a single chain (an MLP, or an autoencoder's encoder followed
by its decoder). A permutation is an integer array `perm`; unit j of the permuted
layer is unit `perm[j]` of the original.

References:
  Ainsworth, Hayase & Srinivasa, "Git Re-Basin: Merging Models modulo Permutation
  Symmetries", ICLR 2023, Algorithm 1 (weight matching).
  Freeman & Bruna, "Topology and Geometry of Half-Rectified Network Optimization",
  ICLR 2017.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linear_sum_assignment

from common.pytree import PyTree

_DIGITS = re.compile(r"(\d+)")


class Alignment(NamedTuple):
    """The result of `align`.

    Attributes:
      params: params_b with its hidden units permuted towards params_a (same function).
      permutations: one int array per hidden layer, in chain order, such that
        `params == permute_hidden(params_b, permutations)`.
    """

    params: PyTree
    permutations: list[np.ndarray]


def _natural_key(name: str) -> tuple:
    """Sort key: modules under 'decoder' last, then names with numbers compared as numbers."""
    chunks = tuple(int(c) if c.isdigit() else c for c in _DIGITS.split(name))
    return (name.split("/")[0] == "decoder", chunks)


def dense_chain(params: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The module names of `params` as a chain of dense layers, in forward order.

    Order is natural name order (linear_2 before linear_10), with modules under
    'decoder' after all others, so an autoencoder's encoder precedes its decoder.

    Args:
      params: haiku-style tree `{module: {'w': [in, out], 'b': [out] (optional)}}`.

    Returns:
      The module names, input layer first.

    Raises:
      ValueError: if a module is not a dense layer (other leaves, a 'w' not of rank 2,
        a mismatched bias) or consecutive layers' shapes do not chain.
    """
    if not isinstance(params, Mapping) or not params:
        raise ValueError("alignment needs a non-empty dict of dense modules {name: {'w', 'b'}}")
    names = sorted(params, key=_natural_key)
    for name in names:
        module = params[name]
        if not isinstance(module, Mapping) or "w" not in module or set(module) - {"w", "b"}:
            keys = sorted(module) if isinstance(module, Mapping) else type(module).__name__
            raise ValueError(
                f"module {name!r} is not a dense layer: expected keys 'w' and "
                f"optionally 'b', got {keys}"
            )
        w_shape = np.shape(module["w"])
        if len(w_shape) != 2:
            raise ValueError(
                f"module {name!r} has a rank-{len(w_shape)} 'w' of shape {w_shape}; "
                "alignment supports only dense layers with 'w' of shape [in, out]"
            )
        if "b" in module and np.shape(module["b"]) != (w_shape[1],):
            raise ValueError(
                f"module {name!r}: bias shape {np.shape(module['b'])} does not "
                f"match 'w' shape {w_shape}"
            )
    for prev, nxt in zip(names, names[1:]):
        out_dim, in_dim = np.shape(params[prev]["w"])[1], np.shape(params[nxt]["w"])[0]
        if out_dim != in_dim:
            raise ValueError(
                f"layers do not chain: {prev!r} has {out_dim} outputs but "
                f"{nxt!r} has {in_dim} inputs"
            )
    return names


def hidden_widths(params: PyTree) -> list[int]:
    """The number of units of each hidden layer (every layer's output but the last's)."""
    return [int(np.shape(params[name]["w"])[1]) for name in dense_chain(params)[:-1]]


def permute_hidden(params: PyTree, permutations: Sequence[jax.typing.ArrayLike]) -> PyTree:
    """Reorders the hidden units of `params`; the function computed is unchanged.

    Args:
      params: a dense chain (see `dense_chain`).
      permutations: one int array per hidden layer; unit j of hidden layer l becomes
        unit `permutations[l][j]` of the input. Permuting by p1 then p2 equals
        permuting by `p1[p2]`.

    Returns:
      A tree with the same structure: layer l's 'w' columns and 'b' entries, and layer
      l+1's 'w' rows, taken in the order of `permutations[l]`.
    """
    names = dense_chain(params)
    widths = hidden_widths(params)
    if len(permutations) != len(widths):
        raise ValueError(
            f"expected {len(widths)} permutations (one per hidden layer), got {len(permutations)}"
        )
    for width, perm in zip(widths, permutations):
        if np.shape(perm) != (width,):
            raise ValueError(
                f"a permutation of shape {np.shape(perm)} for a hidden layer of width {width}"
            )
    out = {name: dict(params[name]) for name in names}
    for l, perm in enumerate(permutations):
        layer, following = out[names[l]], out[names[l + 1]]
        layer["w"] = jnp.take(layer["w"], perm, axis=1)
        if "b" in layer:
            layer["b"] = jnp.take(layer["b"], perm, axis=0)
        following["w"] = jnp.take(following["w"], perm, axis=0)
    return out


def matching_objective(params_a: PyTree, params_b: PyTree) -> float:
    """The weight-matching objective: the inner product of the two parameter trees."""
    products = jax.tree_util.tree_map(
        lambda a, b: np.vdot(np.asarray(a, np.float64), np.asarray(b, np.float64)),
        params_a,
        params_b,
    )
    return float(sum(jax.tree_util.tree_leaves(products)))


def _similarity(a: list, b: list, perms: list, l: int) -> np.ndarray:
    """S[j, k]: the objective's gain from matching unit j of a to unit k of b in layer l.

    `a`, `b` are per-layer (w, b) float64 pairs; the neighbouring layers' permutations
    in `perms` (identity at the network's input and output) are held fixed.
    """
    (wa, ba), (wb, bb) = a[l], b[l]
    rows = perms[l - 1] if l > 0 else slice(None)
    sim = wa.T @ wb[rows, :]
    if ba is not None:
        sim += np.outer(ba, bb)
    cols = perms[l + 1] if l + 1 < len(perms) else slice(None)
    return sim + a[l + 1][0] @ b[l + 1][0][:, cols].T


def align(
    params_a: PyTree,
    params_b: PyTree,
    *,
    max_iterations: int = 100,
    key: jax.Array | None = None,
) -> Alignment:
    """Permutes the hidden units of params_b to bring it close to params_a.

    Coordinate ascent on the weight-matching objective (Ainsworth et al., Algorithm 1):
    each sweep visits the hidden layers in a random order and replaces that layer's
    permutation by the optimal linear assignment given its neighbours; it stops after
    a sweep in which no layer improved, or after `max_iterations` sweeps. Starting from
    the identity and accepting only improvements, the result is never farther from
    params_a than params_b is.

    Args:
      params_a: the reference dense chain.
      params_b: a dense chain with the same module names and shapes.
      max_iterations: the most sweeps over the layers.
      key: PRNG key for the layer order; None means `jax.random.PRNGKey(0)`, so the
        result is deterministic.

    Returns:
      `Alignment(params, permutations)`: permuted params_b (same function) and the
      permutations, with `params == permute_hidden(params_b, permutations)`.
    """
    names = dense_chain(params_b)
    shapes = lambda params: {n: {k: np.shape(v) for k, v in params[n].items()} for n in names}
    if dense_chain(params_a) != names or shapes(params_a) != shapes(params_b):
        raise ValueError("params_a and params_b must have the same modules and shapes")
    as_f64 = lambda params: [
        (
            np.asarray(params[n]["w"], np.float64),
            np.asarray(params[n]["b"], np.float64) if "b" in params[n] else None,
        )
        for n in names
    ]
    a, b = as_f64(params_a), as_f64(params_b)
    perms = [np.arange(width) for width in hidden_widths(params_b)]
    key = jax.random.PRNGKey(0) if key is None else key
    for _ in range(max_iterations if perms else 0):
        key, order_key = jax.random.split(key)
        improved = False
        for l in np.asarray(jax.random.permutation(order_key, len(perms))):
            sim = _similarity(a, b, perms, l)
            old = sim[np.arange(len(perms[l])), perms[l]].sum()
            _, cols = linear_sum_assignment(sim, maximize=True)
            new = sim[np.arange(len(cols)), cols].sum()
            if new > old + 1e-12 * max(1.0, abs(old)):
                perms[l], improved = cols, True
        if not improved:
            break
    return Alignment(permute_hidden(params_b, perms), perms)


def aligned_distance(params_a: PyTree, params_b: PyTree, **align_kwargs) -> float:
    """The L2 distance from params_a to params_b after `align` (kwargs passed on)."""
    aligned = align(params_a, params_b, **align_kwargs).params
    squares = jax.tree_util.tree_map(
        lambda x, y: np.sum((np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2),
        params_a,
        aligned,
    )
    return float(np.sqrt(sum(jax.tree_util.tree_leaves(squares))))
