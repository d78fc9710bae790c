"""The interfaces of an inner problem: `Task` (one problem) and `TaskFamily` (many).

A task is a bundle of pure functions over a params pytree. Data live on device as
arrays closed over by those functions, so `sample_batch` runs inside `jit` and a
whole inner loop can be `vmap`ped over task instances.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax

from common.pytree import PyTree

Params = PyTree
Batch = PyTree


@dataclasses.dataclass(frozen=True)
class Task:
    """One inner optimization problem.

    Attributes:
      name: registry name of the family the task came from.
      init: `key -> params`, a fresh parameter pytree.
      loss: `(params, batch) -> scalar`, the training loss on a minibatch.
      sample_batch: `key -> batch`, a minibatch drawn on device (jit-safe).
      eval_loss: `params -> scalar`, the loss on a fixed evaluation set. It is
        deterministic, so it certifies that a point lies in a level set
        Omega(lambda) = {theta : F(theta) <= lambda}.
      metrics: `params -> dict[str, scalar]` of extra measurements (test loss,
        accuracy, ...); returns an empty dict where a task has none.
      sample_validation_batch: `key -> batch` from a validation split held out of the
        training data (never drawn by `sample_batch`), for meta-objectives that score
        generalization; None where the task has no such split.
    """

    name: str
    init: Callable[[jax.Array], Params]
    loss: Callable[[Params, Batch], jax.Array]
    sample_batch: Callable[[jax.Array], Batch]
    eval_loss: Callable[[Params], jax.Array]
    metrics: Callable[[Params], Mapping[str, jax.Array]] = lambda params: {}
    sample_validation_batch: Callable[[jax.Array], Batch] | None = None


@dataclasses.dataclass(frozen=True)
class TaskFamily:
    """Many instances of one architecture with equal shapes.

    `make_task(instance_key)` derives the family-specific variation (random data
    for synthetic problems, an input scaling or a label permutation for data
    sets) from the key. Because the key is an array, `jax.vmap` over instance
    keys yields N distinct problems inside one trace; init seeds and batch order
    come from the keys passed to `Task.init` and `Task.sample_batch`.

    Attributes:
      name: registry name.
      options: the frozen options dataclass the family was built from.
      make_task: `instance_key -> Task`, traceable.
    """

    name: str
    options: Any
    make_task: Callable[[jax.Array], Task]

    def instance(self, key: jax.Array) -> Task:
        """Returns the task instance selected by `key` (traceable under vmap)."""
        return self.make_task(key)


@dataclasses.dataclass(frozen=True)
class LabeledSplits:
    """A supervised data set split into a training and a held-out part.

    Attributes:
      x_train, y_train: training inputs and integer labels (numpy arrays).
      x_test, y_test: held-out inputs and labels.
      description: where the arrays came from (shown in logs and reports).
    """

    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any
    description: str = ""
