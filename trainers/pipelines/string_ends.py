"""Models trained into a level set: the fixed ends of the strings `meta-opt geodesics` samples.

`geodesics connect` and the path part of `geodesics spectrum` both need two models of a
task whose eval loss is at most `geodesics.level` before a string can join them; this
module holds that one trainer, so that both jobs train their ends alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from geodesic_targets.beads import descend_until
from meta_opt.inner_step import task_objective
from trainers.config.experiment import ExperimentConfig
from trainers.errors import RunError


def trainer_to_level(config: ExperimentConfig, task) -> Callable[[jax.Array, jax.Array, str], Any]:
    """`(init_key, step_key, what) -> params`: a model of `task` trained to `geodesics.level`.

    The string's ends must lie inside the level set; one that does not get there in
    `geodesics.sweep.max_train_steps` is a clear error naming `what` and the settings to change.
    """
    geo = config.geodesics
    descend = jax.jit(
        lambda start, k: descend_until(
            task_objective(task),
            task.eval_loss,
            geo.train_optimizer.build(),
            start,
            geo.level,
            geo.sweep.max_train_steps,
            k,
        )
    )

    def train(init_key: jax.Array, step_key: jax.Array, what: str) -> Any:
        params, loss, _ = descend(task.init(init_key), step_key)
        if float(loss) > geo.level:
            raise RunError(
                f"{what} did not reach level {geo.level} (eval loss {float(loss):.4g}) in "
                f"{geo.sweep.max_train_steps} steps: raise geodesics.sweep.max_train_steps "
                "or geodesics.level"
            )
        return params

    return train
