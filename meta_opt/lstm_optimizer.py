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

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from common.pytree import PyTree
from meta_opt.architectures import architecture_from_fields
from meta_opt.lstm_core import coordinatewise_lstm
from meta_opt.lstm_v1_config import LSTMv1Config
from meta_opt.preprocess import gradient_features


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


def init_meta_params(config: LSTMv1Config, key: jax.Array) -> PyTree:
    """Fresh meta-parameters of the optimizer `config` describes (the LSTM and head weights)."""
    core = coordinatewise_lstm(config.hidden_sizes)
    return core.init(key, jnp.zeros((1, config.num_features)))


def transformation(config: LSTMv1Config, meta_params: PyTree) -> optax.GradientTransformation:
    """The optax transformation that applies the optimizer `config` with `meta_params`.

    Works for any params pytree, under `jit` and `vmap`, and is differentiable
    with respect to `meta_params` (the updates are a smooth function of them).
    """
    core = coordinatewise_lstm(config.hidden_sizes)

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
        momentum = config.momentum_decay * state.momentum + (1 - config.momentum_decay) * grad
        values = {"gradient": grad, "momentum": momentum}
        inputs = jnp.concatenate(
            [gradient_features(values[name], config.preprocess_p) for name in config.features], -1
        )
        output, rnn_state = core.step(meta_params, inputs, state.rnn_state)
        new_state = LSTMOptimizerState(rnn_state, momentum, optax.safe_int32_increment(state.count))
        return unravel(config.output_scale * output), new_state

    return optax.GradientTransformation(init_fn, update_fn)


def lstm_optimizer(meta_params: PyTree, **config: Any) -> optax.GradientTransformation:
    """A learned optimizer by name: the architecture `config`'s fields describe, with `meta_params`.

    `config` may name its `kind` (`meta_opt.architectures`); without one, non-empty `inputs`
    means v2. Lists (e.g. `hidden_sizes` from YAML) are taken as tuples.
    """
    return architecture_from_fields(config).transformation(meta_params)
