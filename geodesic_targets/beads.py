"""Training new beads below a loss threshold, many at once.

A bead starts on the segment between its two neighbours and is trained until
its certifying loss is at most `target` (alpha times the level-set threshold)
or its step budget runs out. Beads are independent, so a whole recursion level
trains in one vmapped `while_loop`: each bead stops at its own step count (the
vmapped loop freezes finished beads), so batched and one-by-one training give
the same beads.

- greedy (Freeman & Bruna, Algorithm 1): plain descent on the loss.
- constrained (Freeman & Bruna, section 6; the lecture notes' projection form
  theta_3 = argmin over {theta in H, E(theta) <= u0} of ||theta - theta_m||): the
  bead starts at the midpoint theta_m, descends on the loss plus
  (pull / 2) ||theta - theta_m||^2, and is projected after every step onto the
  hyperplane H equidistant from its neighbours.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from common.pytree import PyTree
from geodesic_targets.options import Method
from meta_opt.inner_step import InnerCarry, inner_step


def _tree_dot(a: PyTree, b: PyTree) -> jax.Array:
    return sum(
        jnp.vdot(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))
    )


def project_to_bisector(theta: PyTree, left: PyTree, right: PyTree) -> PyTree:
    """Projects theta onto the hyperplane of points equidistant from `left` and `right`."""
    midpoint = jax.tree_util.tree_map(lambda a, b: (a + b) / 2, left, right)
    normal = jax.tree_util.tree_map(jnp.subtract, right, left)
    offset = jax.tree_util.tree_map(jnp.subtract, theta, midpoint)
    scale = _tree_dot(offset, normal) / jnp.maximum(_tree_dot(normal, normal), 1e-30)
    return jax.tree_util.tree_map(lambda p, n: p - scale * n, theta, normal)


def descend_until(
    objective: Callable[[PyTree, jax.Array], jax.Array],
    certify: Callable[[PyTree], jax.Array],
    optimizer: optax.GradientTransformation,
    start: PyTree,
    target: jax.Array,
    max_steps: int,
    key: jax.Array,
    project: Callable[[PyTree], PyTree] | None = None,
) -> tuple[PyTree, jax.Array, jax.Array]:
    """Descends on `objective` until `certify(params) <= target` or `max_steps` steps.

    Args:
      objective: `(params, key) -> scalar` to descend on (a minibatch key per step).
      certify: the deterministic loss of the stopping test.
      optimizer: the optax optimizer.
      start: initial params (projected first when `project` is given).
      target: the level to reach.
      max_steps: the step budget.
      key: PRNG key of the per-step keys.
      project: optional map applied after every step (a constraint).

    Returns:
      `(params, certify(params), steps taken)`. Under `vmap`, each element stops at
      its own step: the loop runs until all are done and freezes finished ones.
    """
    project = project or (lambda params: params)
    start = project(start)

    def keep_going(carry):
        _, _, loss, step, _ = carry
        return (loss > target) & (step < max_steps)

    def descend(carry):
        params, opt_state, _, step, key = carry
        key, step_key = jax.random.split(key)
        moved, _ = inner_step(objective, optimizer, InnerCarry(params, opt_state), step_key)
        params = project(moved.params)
        return params, moved.opt_state, certify(params), step + 1, key

    carry = (start, optimizer.init(start), certify(start), jnp.zeros([], jnp.int32), key)
    params, _, loss, steps, _ = jax.lax.while_loop(keep_going, descend, carry)
    return params, loss, steps


@dataclasses.dataclass(frozen=True)
class BeadTraining:
    """How beads are trained.

    Every loss takes a `context` last: data the caller varies between searches
    without recompiling (e.g. a task instance key); it is None for plain losses.

    Attributes:
      loss_fn: the certifying loss `(params, context) -> scalar` (deterministic).
      optimizer: the optax optimizer of the descent.
      max_steps: the step budget of one bead.
      method: "greedy" or "constrained".
      pull: strength of the pull toward the neighbours' midpoint (constrained).
      train_loss_fn: optional minibatch loss `(params, key, context) -> scalar` to
        descend on instead of `loss_fn`; the stopping test always uses `loss_fn`.
    """

    loss_fn: Callable[[PyTree, Any], jax.Array]
    optimizer: optax.GradientTransformation
    max_steps: int = 500
    method: Method = "greedy"
    pull: float = 1e-2
    train_loss_fn: Callable[[PyTree, jax.Array, Any], jax.Array] | None = None

    def objective(
        self, params: PyTree, key: jax.Array, midpoint: PyTree, context: Any
    ) -> jax.Array:
        """The loss a bead descends on at one step."""
        if self.train_loss_fn is None:
            loss = self.loss_fn(params, context)
        else:
            loss = self.train_loss_fn(params, key, context)
        if self.method == "constrained":
            offset = jax.tree_util.tree_map(jnp.subtract, params, midpoint)
            loss = loss + 0.5 * self.pull * _tree_dot(offset, offset)
        return loss

    def train_one(
        self,
        start: PyTree,
        left: PyTree,
        right: PyTree,
        key: jax.Array,
        target: jax.Array,
        context: Any = None,
    ) -> tuple[PyTree, jax.Array, jax.Array]:
        """Trains one bead; returns `(bead, certifying loss, steps taken)`."""
        midpoint = jax.tree_util.tree_map(lambda a, b: (a + b) / 2, left, right)
        project = None
        if self.method == "constrained":
            project = lambda params: project_to_bisector(params, left, right)
        return descend_until(
            lambda p, k: self.objective(p, k, midpoint, context),
            lambda p: self.loss_fn(p, context),
            self.optimizer,
            start,
            target,
            self.max_steps,
            key,
            project,
        )

    def train_many(
        self,
        starts: PyTree,
        lefts: PyTree,
        rights: PyTree,
        keys: jax.Array,
        targets: jax.Array,
        context: Any = None,
    ) -> tuple[PyTree, jax.Array, jax.Array]:
        """`train_one` over beads stacked along axis 0 (each with its own target), in one vmap."""
        return jax.vmap(self.train_one, in_axes=(0, 0, 0, 0, 0, None))(
            starts, lefts, rights, keys, targets, context
        )
