"""The teacher: a baseline optimizer's trajectories, cut into pairs (theta_t, theta_{t+T}).

The teacher runs on N task instances at once (vmap) and every step is kept, so a
pair carries the teacher's own path between its ends and the teacher's losses
along it (the level schedule "teacher", and where a chord breaks it).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from common.pytree import PyTree
from geodesic_targets.options import TargetOptions
from meta_opt.inner_step import init_carry, inner_step, task_objective
from tasks.base import TaskFamily


@dataclasses.dataclass(frozen=True)
class TeacherRuns:
    """Teacher trajectories on N instances.

    Attributes:
      instance_keys: the task instance of each run, [N, 2].
      params: theta_0 ... theta_S of each run, leaves [N, S + 1, ...].
      losses: the deterministic loss F at every step, [N, S + 1].
    """

    instance_keys: np.ndarray
    params: PyTree
    losses: np.ndarray

    def pair(self, instance: int, start: int, horizon: int) -> tuple[PyTree, np.ndarray]:
        """The teacher's path theta_t ... theta_{t+T} (leaves [T + 1, ...]) and its losses [T + 1]."""
        window = slice(start, start + horizon + 1)
        return (
            jax.tree_util.tree_map(lambda x: x[instance, window], self.params),
            self.losses[instance, window],
        )


def run_teacher(
    family: TaskFamily,
    teacher: optax.GradientTransformation,
    options: TargetOptions,
    key: jax.Array,
) -> TeacherRuns:
    """Runs the teacher for `options.num_steps` steps on `options.num_instances` instances at once."""
    instance_key, init_key, batch_key = jax.random.split(key, 3)
    n = options.num_instances

    def trajectory(inst_key, init, batches):
        task = family.instance(inst_key)
        objective = task_objective(task)

        def step(carry, k):
            new_carry, _ = inner_step(objective, teacher, carry, k)
            return new_carry, carry.params

        final, history = jax.lax.scan(
            step, init_carry(teacher, task.init(init)), jax.random.split(batches, options.num_steps)
        )
        history = jax.tree_util.tree_map(
            lambda h, f: jnp.concatenate([h, f[None]]), history, final.params
        )
        return history, jax.vmap(task.eval_loss)(history)

    keys = jax.random.split(instance_key, n)
    history, losses = jax.jit(jax.vmap(trajectory))(
        keys, jax.random.split(init_key, n), jax.random.split(batch_key, n)
    )
    return TeacherRuns(np.asarray(keys), jax.device_get(history), np.asarray(losses))
