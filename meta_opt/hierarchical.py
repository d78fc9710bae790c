"""The hierarchical learned optimizer: a per-tensor LSTM that drives a tiny per-parameter MLP.

Each step, every tensor (pytree leaf) gets one row of `TENSOR_FEATURES` (training
progress, scale-free statistics of its gradient and momenta, its parameter scale,
its size); one small LSTM, run over the tensors as a batch, turns each row into a
log step size s and softmax weights over a bank of MLPs. Each coordinate's
`PARAMETER_FEATURES` (Adam-like accumulators, divided column by column by their RMS
over the tensor) go through the tensor's mixed MLP to a direction d and a
magnitude m, and

    update = output_scale * exp(s) * d * exp(magnitude_scale * m)   [* max(RMS θ, floor)]

The per-tensor normalization is folded into the mixed first-layer weights, so the
coordinates see one matrix product of width `mlp_hidden` and nothing else learned.
`HierarchicalConfig` (kind "hierarchical") is configured in
`meta_opt.hierarchical_config`.

References:
  Metz et al., "VeLO: Training versatile learned optimizers by scaling up", 2022;
  learned_optimization's `hyper_v2.py`.
  Moudgil et al., "Celo: Training versatile learned optimizers on a compute diet", 2025.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from common.pytree import PyTree
from meta_opt.features import LOG_EPS, NORMALIZER_EPS
from meta_opt.hierarchical_config import HierarchicalConfig
from meta_opt.lstm_core import CoreFunctions, coordinatewise_lstm


class HierarchicalState(NamedTuple):
    """State of the hierarchical optimizer.

    Attributes:
      lstm_state: the per-tensor LSTM's state, one row per tensor (leaf order).
      momenta: per leaf, moving averages of the gradient, [K] + leaf shape (one per decay).
      second_moment: per leaf, moving average of the squared gradient.
      count: number of updates so far, [] int32.
    """

    lstm_state: PyTree
    momenta: PyTree
    second_moment: PyTree
    count: jax.Array


def _tensor_lstm(config: HierarchicalConfig) -> CoreFunctions:
    return coordinatewise_lstm((config.lstm_hidden,), outputs=1 + config.num_mlps)


def init_meta_params(config: HierarchicalConfig, key: jax.Array) -> PyTree:
    """Fresh meta-parameters: the per-tensor LSTM and the bank of per-parameter MLPs."""
    lstm_key, first_key, second_key = jax.random.split(key, 3)
    b, f, h = config.num_mlps, config.num_parameter_features, config.mlp_hidden
    normal = lambda k, shape, fan_in: (
        jax.random.truncated_normal(k, -2.0, 2.0, shape) / math.sqrt(fan_in)
    )
    return {
        "tensor_lstm": _tensor_lstm(config).init(
            lstm_key, jnp.zeros((1, config.num_tensor_features))
        ),
        "mlp_bank": {
            "w1": normal(first_key, (b, f, h), f),
            "b1": jnp.zeros((b, h)),
            "w2": normal(second_key, (b, h, 2), h),
            "b2": jnp.zeros((b, 2)),
        },
    }


class _Tensor(NamedTuple):
    """One tensor's per-parameter feature columns (F arrays [n]), their mean squares [F], its LSTM row.

    Columns, not an [n, F] matrix: each coordinate's MLP is then written as elementwise
    sums over the columns, which XLA fuses into one pass over the tensor (a matrix
    product with 11 inputs and 4 outputs per row is memory-bound and ~3x slower on CPU).
    """

    columns: list[jax.Array]
    mean_squares: jax.Array
    row: jax.Array


def _tensor(config, grad, m_hat, v_hat, param, progress) -> _Tensor:
    """The features of one flattened tensor (grad, v_hat, param [n]; m_hat K arrays [n])."""
    inv_rms = jax.lax.rsqrt(v_hat + config.rms_eps)
    ratios = [grad * inv_rms] + [m * inv_rms for m in m_hat]
    columns = [grad, *m_hat, *ratios] + ([param] if config.param_feature else [])
    n = max(grad.shape[0], 1)  # an empty tensor's statistics are zeros, not NaN
    mean_squares = jnp.stack([jnp.sum(c * c) for c in columns]) / n
    k = len(config.momentum_decays)
    ratio_ms = mean_squares[1 + k : 2 + 2 * k]
    row = jnp.concatenate(
        [
            progress,
            0.5 * jnp.log(ratio_ms + LOG_EPS),
            0.5 * jnp.log(jnp.sum(param**2, keepdims=True) / n + LOG_EPS),
            jnp.full((1,), math.log(n), grad.dtype),
        ]
    )
    return _Tensor(columns, mean_squares, row)


def _moments(config, grad, momenta, second_moment, t):
    """One leaf's updated moving averages ([K, *shape], shape), and their flat bias corrections."""
    decays = jnp.asarray(config.momentum_decays, grad.dtype).reshape((-1,) + (1,) * grad.ndim)
    momenta = decays * momenta + (1 - decays) * grad
    second_moment = config.rms_decay * second_moment + (1 - config.rms_decay) * grad**2
    corrections = 1 - decays.reshape(-1) ** t
    m_hat = [momenta[i].reshape(-1) / corrections[i] for i in range(len(config.momentum_decays))]
    v_hat = second_moment.reshape(-1) / (1 - config.rms_decay**t)
    return momenta, second_moment, m_hat, v_hat


def _mlp_step(config, bank, mixing, tensor: _Tensor) -> jax.Array:
    """d * exp(magnitude_scale * m) of the tensor's mixed MLP on its normalized features."""
    w1 = jnp.einsum("b,bfh->fh", mixing, bank["w1"])
    w1 = w1 * jax.lax.rsqrt(NORMALIZER_EPS + tensor.mean_squares)[:, None]
    b1, b2 = mixing @ bank["b1"], mixing @ bank["b2"]
    w2 = jnp.einsum("b,bho->ho", mixing, bank["w2"])
    hidden = [
        jax.nn.relu(sum(c * w1[f, h] for f, c in enumerate(tensor.columns)) + b1[h])
        for h in range(config.mlp_hidden)
    ]
    direction = sum(x * w2[h, 0] for h, x in enumerate(hidden)) + b2[0]
    magnitude = sum(x * w2[h, 1] for h, x in enumerate(hidden)) + b2[1]
    return direction * jnp.exp(config.magnitude_scale * magnitude)


def transformation(config: HierarchicalConfig, meta_params: PyTree) -> optax.GradientTransformation:
    """The optax transformation of the hierarchical optimizer `config` with `meta_params`.

    Works for any params pytree, under `jit` and `vmap`, and is differentiable with
    respect to `meta_params`. The tensors are the pytree's leaves.

    Raises:
      ValueError: at `update`, when no parameters are given (the LSTM sees their scale).
    """
    core = _tensor_lstm(config)

    def init_fn(params: PyTree) -> HierarchicalState:
        leaves = jax.tree_util.tree_leaves(params)
        return HierarchicalState(
            lstm_state=core.initial_state(len(leaves)),
            momenta=jax.tree_util.tree_map(
                lambda p: jnp.zeros((len(config.momentum_decays),) + p.shape, p.dtype), params
            ),
            second_moment=jax.tree_util.tree_map(jnp.zeros_like, params),
            count=jnp.zeros([], jnp.int32),
        )

    def update_fn(updates: PyTree, state: HierarchicalState, params: PyTree = None):
        if params is None:
            raise ValueError("the hierarchical optimizer needs params passed to update")
        grads, treedef = jax.tree_util.tree_flatten(updates)
        values = treedef.flatten_up_to(params)
        old_m, old_v = (
            treedef.flatten_up_to(state.momenta),
            treedef.flatten_up_to(state.second_moment),
        )
        dtype = jnp.result_type(*grads) if grads else jnp.float32
        steps = state.count.astype(dtype)
        t = steps + 1.0
        progress = jnp.tanh(steps / jnp.asarray(config.step_timescales, dtype))
        if config.horizon is not None:
            progress = jnp.concatenate([progress, (steps / config.horizon)[None]])
        moments = [_moments(config, *leaf, t) for leaf in zip(grads, old_m, old_v)]
        tensors = [
            _tensor(config, g.reshape(-1), m_hat, v_hat, p.reshape(-1).astype(g.dtype), progress)
            for g, p, (_, _, m_hat, v_hat) in zip(grads, values, moments)
        ]
        rows = jnp.stack([tensor.row for tensor in tensors])
        out, lstm_state = core.step(meta_params["tensor_lstm"], rows, state.lstm_state)
        scales = config.output_scale * jnp.exp(out[:, 0])
        mixing = jax.nn.softmax(out[:, 1:], axis=-1)
        steps_out = []
        for i, (g, p, tensor) in enumerate(zip(grads, values, tensors)):
            step = scales[i] * _mlp_step(config, meta_params["mlp_bank"], mixing[i], tensor)
            if config.relative_update:
                rms = jnp.sqrt(jnp.sum(p.astype(g.dtype) ** 2) / max(p.size, 1))
                step = step * jnp.maximum(rms, config.relative_floor)
            steps_out.append(step.reshape(g.shape).astype(g.dtype))
        new_state = HierarchicalState(
            lstm_state,
            treedef.unflatten([m for m, *_ in moments]),
            treedef.unflatten([v for _, v, *_ in moments]),
            optax.safe_int32_increment(state.count),
        )
        return treedef.unflatten(steps_out), new_state

    return optax.GradientTransformation(init_fn, update_fn)
