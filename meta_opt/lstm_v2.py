"""The v2 LSTM meta-optimizer: selectable per-coordinate inputs, direction x exp(magnitude).

Still the coordinatewise LSTM of Andrychowicz et al. (2016): every coordinate
of every tensor runs the same small LSTM with its own state. What changes is
what it sees (`meta_opt.features`: momenta at several decays, RMS-normalized
gradient and momenta, a step embedding, the fraction of the run done,
per-tensor context, the parameter value) and what it says: two numbers per
coordinate, a direction d and a magnitude m, and the update

    output_scale * d * exp(magnitude_scale * m)    [* max(RMS of the tensor's values, floor)]

the last factor only with `relative_update`. `LSTMv2Config` (kind "lstm_v2")
is implemented here; v1 (`meta_opt.lstm_optimizer`)
keeps its state type and meta-params.

References:
  Andrychowicz et al., "Learning to learn by gradient descent by gradient
  descent", NeurIPS 2016.
  Metz et al., "VeLO: Training versatile learned optimizers by scaling up", 2022;
  learned_optimization's `mlp_lopt.py` / `adafac_mlp_lopt.py` (direction x
  exp(magnitude) output, per-tensor normalized inputs).
  Moudgil et al., "Celo: Training versatile learned optimizers on a compute
  diet", 2025 (parameter-scaled updates).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from common.pytree import PyTree
from meta_opt import features
from meta_opt.lstm_core import coordinatewise_lstm
from meta_opt.lstm_v2_config import LSTMv2Config


class LSTMv2State(NamedTuple):
    """Per-coordinate state of the v2 learned optimizer.

    Attributes:
      rnn_state: the stacked LSTM's state, arrays [n_coordinates, hidden].
      momenta: moving averages of the gradient, one column per decay, [n_coordinates, K].
      second_moment: moving average of the squared gradient, [n_coordinates].
      count: number of updates so far, [] int32.
    """

    rnn_state: PyTree
    momenta: jax.Array
    second_moment: jax.Array
    count: jax.Array


def init_meta_params(config: LSTMv2Config, key: jax.Array) -> PyTree:
    """Fresh meta-parameters of the v2 optimizer `config` describes (LSTM, 2-output head)."""
    core = coordinatewise_lstm(config.hidden_sizes, outputs=2)
    return core.init(key, jnp.zeros((1, config.num_features)))


def transformation(config: LSTMv2Config, meta_params: PyTree) -> optax.GradientTransformation:
    """The optax transformation of the v2 optimizer `config` with `meta_params`.

    Works for any params pytree, under `jit` and `vmap`, and is differentiable
    with respect to `meta_params`. The tensors are the pytree's leaves.

    Raises:
      ValueError: at `update`, when `config` needs the parameters and none were given.
    """
    core = coordinatewise_lstm(config.hidden_sizes, outputs=2)

    def init_fn(params: PyTree) -> LSTMv2State:
        flat, _ = ravel_pytree(params)
        return LSTMv2State(
            rnn_state=core.initial_state(flat.shape[0]),
            momenta=jnp.zeros(flat.shape + (len(config.momentum_decays),), flat.dtype),
            second_moment=jnp.zeros_like(flat),
            count=jnp.zeros([], jnp.int32),
        )

    def update_fn(updates: PyTree, state: LSTMv2State, params: PyTree = None):
        grad, unravel = ravel_pytree(updates)
        segments = features.segments_of(updates)
        flat_params = None
        if config.needs_params:
            if params is None:
                raise ValueError(
                    f"the v2 optimizer with inputs {config.inputs} and relative_update="
                    f"{config.relative_update} needs params passed to update"
                )
            flat_params = ravel_pytree(params)[0].astype(grad.dtype)
        momenta, second_moment = features.update_moments(
            config, state.momenta, state.second_moment, grad
        )
        raw = features.raw_inputs(
            config, grad, momenta, second_moment, state.count, flat_params, segments
        )
        output, rnn_state = core.step(
            meta_params, features.feature_matrix(config, raw, segments), state.rnn_state
        )
        step = config.output_scale * output[:, 0] * jnp.exp(config.magnitude_scale * output[:, 1])
        if config.relative_update:
            mean_square = features.tensor_mean(flat_params**2, segments)
            scale = jnp.sqrt(jnp.maximum(mean_square, config.relative_floor**2))
            step = step * features.broadcast(scale, segments)
        new_state = LSTMv2State(
            rnn_state, momenta, second_moment, optax.safe_int32_increment(state.count)
        )
        return unravel(step.astype(grad.dtype)), new_state

    return optax.GradientTransformation(init_fn, update_fn)


lstm_v2_transformation = transformation  # the name before the architecture registry
