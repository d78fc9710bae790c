"""The LSTM meta-optimizer as an optax transformation.

Parameters of any pytree are flattened into one vector of coordinates; each
coordinate's features (preprocessed gradient, optionally a preprocessed
gradient moving average) go through the shared coordinatewise LSTM, whose
output times `output_scale` is that coordinate's update.

References:
  Andrychowicz et al., "Learning to learn by gradient descent by gradient
  descent", NeurIPS 2016.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from meta_opt.lstm_core import coordinatewise_lstm
from meta_opt.preprocess import gradient_features

PyTree = Any
FEATURES = ("gradient", "momentum")


class LSTMOptimizerState(NamedTuple):
    """Per-coordinate state of the learned optimizer.

    Attributes:
      rnn_state: the stacked LSTM's state, arrays [n_coordinates, hidden].
      momentum: exponential moving average of the gradient, [n_coordinates].
      count: number of updates so far, [] int32.
    """

    rnn_state: PyTree
    momentum: jax.Array
    count: jax.Array


@dataclasses.dataclass(frozen=True)
class LSTMOptimizer:
    """Configuration of the coordinatewise LSTM optimizer.

    Attributes:
      hidden_sizes: widths of the stacked LSTM layers.
      preprocess_p: the log/sign preprocessing scale p; None or 0 feeds raw values.
      output_scale: the update is the LSTM output times this (the paper: 0.1).
      features: which inputs each coordinate sees, from "gradient" and "momentum"
        (a moving average of the gradient with decay `momentum_decay`).
      momentum_decay: decay of the gradient moving average.
    """

    hidden_sizes: tuple[int, ...] = (20, 20)
    preprocess_p: float | None = 10.0
    output_scale: float = 0.1
    features: tuple[str, ...] = ("gradient",)
    momentum_decay: float = 0.9

    def __post_init__(self):
        unknown = sorted(set(self.features) - set(FEATURES))
        if unknown or not self.features:
            raise ValueError(f"features must be a non-empty subset of {FEATURES}, got {self.features}")
        if not self.hidden_sizes or min(self.hidden_sizes) <= 0:
            raise ValueError(f"hidden_sizes must be positive widths, got {self.hidden_sizes}")

    @property
    def num_features(self) -> int:
        """Input features per coordinate."""
        return len(self.features) * (2 if self.preprocess_p else 1)

    def init(self, key: jax.Array) -> PyTree:
        """Fresh meta-parameters (the LSTM and head weights)."""
        core = coordinatewise_lstm(self.hidden_sizes)
        return core.init(key, jnp.zeros((1, self.num_features)))

    def transformation(self, meta_params: PyTree) -> optax.GradientTransformation:
        """The optax transformation that applies this optimizer with `meta_params`.

        Works for any params pytree, under `jit` and `vmap`, and is differentiable
        with respect to `meta_params` (the updates are a smooth function of them).
        """
        core = coordinatewise_lstm(self.hidden_sizes)

        def init_fn(params: PyTree) -> LSTMOptimizerState:
            flat, _ = ravel_pytree(params)
            return LSTMOptimizerState(
                rnn_state=core.initial_state(flat.shape[0]),
                momentum=jnp.zeros_like(flat),
                count=jnp.zeros([], jnp.int32),
            )

        def update_fn(updates: PyTree, state: LSTMOptimizerState, params: PyTree = None):
            del params
            grad, unravel = ravel_pytree(updates)
            momentum = self.momentum_decay * state.momentum + (1 - self.momentum_decay) * grad
            values = {"gradient": grad, "momentum": momentum}
            inputs = jnp.concatenate(
                [gradient_features(values[name], self.preprocess_p) for name in self.features], -1)
            output, rnn_state = core.step(meta_params, inputs, state.rnn_state)
            new_state = LSTMOptimizerState(rnn_state, momentum, optax.safe_int32_increment(state.count))
            return unravel(self.output_scale * output), new_state

        return optax.GradientTransformation(init_fn, update_fn)


def lstm_optimizer(meta_params: PyTree, **config: Any) -> optax.GradientTransformation:
    """`LSTMOptimizer(**config).transformation(meta_params)`: a learned optimizer by name.

    Lists in `config` (e.g. `hidden_sizes` from YAML) are taken as tuples.
    """
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    return LSTMOptimizer(**config).transformation(meta_params)
