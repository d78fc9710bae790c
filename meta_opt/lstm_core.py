"""The coordinatewise LSTM core: one small recurrent network shared by every coordinate.

Haiku is confined to this module (docs/ARCHITECTURE.md, "Haiku"): the learned
optimizer sees the core only as pure `init`/`step`/`initial_state` functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp

from common.pytree import PyTree


class CoreFunctions(NamedTuple):
    """Pure functions of the core.

    Attributes:
      init: `(key, features [n, F]) -> meta_params`.
      step: `(meta_params, features [n, F], state) -> (output, state)`; output is
        [n] for one output per coordinate, else [n, outputs].
      initial_state: `(n) -> state`, zeros for n coordinates.
    """

    init: Any
    step: Any
    initial_state: Any


def _core(hidden_sizes: Sequence[int]) -> hk.DeepRNN:
    return hk.DeepRNN(
        [hk.LSTM(size, name=f"lstm_{i}") for i, size in enumerate(hidden_sizes)],
        name="coordinatewise_lstm",
    )


def zero_state(hidden_sizes: Sequence[int], num_coordinates: int) -> PyTree:
    """The stacked LSTM's initial state for `num_coordinates` coordinates: all zeros."""
    return tuple(
        hk.LSTMState(
            hidden=jnp.zeros((num_coordinates, size)), cell=jnp.zeros((num_coordinates, size))
        )
        for size in hidden_sizes
    )


def coordinatewise_lstm(hidden_sizes: Sequence[int], outputs: int = 1) -> CoreFunctions:
    """A stacked LSTM with a linear head, applied to each coordinate independently.

    Coordinates form the batch axis, so every coordinate has its own hidden state
    while all share the weights (Andrychowicz et al. 2016, section 2.1).

    Args:
      hidden_sizes: widths of the stacked LSTM layers (the paper: (20, 20)).
      outputs: numbers per coordinate the head produces. 1 (the 2016 optimizer)
        keeps the head "output" and returns [n]; more use the head
        "direction_magnitude" and return [n, outputs] (v2: direction, magnitude).

    Returns:
      The core's pure functions.
    """
    if outputs < 1:
        raise ValueError(f"outputs must be >= 1, got {outputs}")

    def step(features: jax.Array, state: PyTree) -> tuple[jax.Array, PyTree]:
        hidden, state = _core(hidden_sizes)(features, state)
        if outputs == 1:
            return hk.Linear(1, name="output")(hidden)[:, 0], state
        return hk.Linear(outputs, name="direction_magnitude")(hidden), state

    transformed = hk.without_apply_rng(hk.transform(step))
    return CoreFunctions(
        init=lambda key, features: transformed.init(
            key, features, zero_state(hidden_sizes, features.shape[0])
        ),
        step=transformed.apply,
        initial_state=lambda n: zero_state(hidden_sizes, n),
    )
