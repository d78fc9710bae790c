"""K meta-training runs of one config, different seeds, in one jitted call.

Meta-seeds differ in everything meta-training draws from its seed (the LSTM's
initial weights, the task instances in flight, their minibatches and the imitation
batches) and, in an ablation, their target sets (`seeds_step_with_targets`); they
share the task family and the outer optimizer. Stacking their `MetaState`s along a new leading axis and `vmap`ping the
meta-step runs all K as one program: small per-seed programs (a 2-core CPU, a
few hundred parameters) are dominated by per-call overhead, which K seeds then share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from trainers.core.meta_step import MetaState


def stack_states(states: Sequence[MetaState]) -> MetaState:
    """K states stacked along a new leading axis (every leaf [K, ...])."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)


def unstack_state(stacked: MetaState, index: int) -> MetaState:
    """The `index`-th run of stacked states."""
    return jax.tree_util.tree_map(lambda x: x[index], stacked)


def seeds_step(meta_step: Callable[[MetaState], tuple[MetaState, dict]]) -> Callable:
    """`step(stacked) -> (stacked, metrics)`: one meta-step of every run (metrics [K]); jit it once."""
    return jax.vmap(meta_step)


def seeds_step_with_targets(build: Callable[[Any], Callable[[MetaState], tuple[MetaState, dict]]]):
    """`step(stacked, targets) -> (stacked, metrics)`: run k's meta-step on its own targets.

    `build(targets)` makes one run's meta-step on one target set; `targets` stacks K sets
    of equal size on a leading axis, one per run, so each run imitates its own draw.
    """
    return jax.vmap(lambda state, targets: build(targets)(state))


def inner_steps_per_meta_step(
    unroll_steps: int, imitation_batch: int, steps_per_pair: int, imitation: bool
) -> int:
    """Inner (optimizee) steps one meta-step computes: the unrolls, plus the imitation unrolls.

    The loss term unrolls `unroll_steps` inner steps (N instances x U steps per task, twice
    with ES or PES: `trainers.pipelines.train.unroll_steps_per_meta_step`); the imitation term computes
    `steps_per_pair` inner steps for each of `imitation_batch` pairs (T learned steps
    from a stored pair start; on-policy, also the warm-up and the teacher's T steps:
    `OnPolicy.inner_steps`). Compute is matched across supervision arms by this count
    (`meta-opt ablation`).
    """
    return unroll_steps + (imitation_batch * steps_per_pair if imitation else 0)
