"""How the v2 learned optimizer's per-coordinate inputs are computed (`LSTMv2Config.inputs`).

All parameters are one flat vector of n coordinates (`ravel_pytree`); the
tensor (pytree leaf) each coordinate belongs to is static (`Segments`), so
per-tensor statistics are a few static slices. With t = count + 1 the number of
gradients seen (this one included), v the moving average of g^2 (decay
`rms_decay`), m_k the moving averages of g (decays `momentum_decays`) and hats
their bias corrections (m_k / (1 - d_k^t), v / (1 - rms_decay^t)):

    log_sign_gradient  (log|g| / p, sign g) of Andrychowicz et al., 2 features
    momenta            m̂_k, one per decay
    rms_normalized     g / sqrt(v̂ + eps) and m̂_k / sqrt(v̂ + eps), 1 + K
    step_embedding     tanh(count / timescale) per timescale (count = steps done)
    horizon_fraction   count / horizon, the fraction of the run done (> 1 past it)
    tensor_context     per tensor, broadcast to its coordinates: 0.5 log mean r^2
                       with r = g / sqrt(v̂ + eps), 0.5 log mean θ^2, log size
    param              θ

What each input is, its width and whether it is normalized are
`meta_opt.lstm_v2_config.INPUT_TABLE`; `COMPUTE` holds one function per row.
Inputs that can be large (the table's `normalized`: "momenta", "rms_normalized",
"param") are divided,
feature by feature and tensor by tensor, by their root mean square over the
tensor's coordinates (learned_optimization's `_second_moment_normalizer`).
Multiplying the loss by a constant changes no input, up to `rms_eps`, except
"log_sign_gradient" (log|g| moves with the scale) and "momenta" (scale-free only
where their RMS is well above sqrt(NORMALIZER_EPS)).

References:
  Andrychowicz et al., "Learning to learn by gradient descent by gradient
  descent", NeurIPS 2016 (log/sign preprocessing).
  Metz et al., "Practical tradeoffs between memory, compute, and performance in
  learned optimizers", CoLLAs 2022; learned_optimization's `mlp_lopt.py` and
  `adafac_mlp_lopt.py` (momenta at several decays, m / sqrt(v), tanh step
  embedding, per-tensor second-moment normalization, direction x exp(magnitude)).
  Metz et al., "VeLO: Training versatile learned optimizers by scaling up",
  2022, and Moudgil et al., "Celo", 2025 (per-tensor features, fraction of
  training done).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from meta_opt.lstm_v2_config import LSTMv2Config
from meta_opt.preprocess import log_sign_features

NORMALIZER_EPS = 1e-5  # learned_optimization's `_second_moment_normalizer` epsilon
LOG_EPS = 1e-12  # added to mean squares before their logarithm (an all-zero tensor: about -13.8)


class Segments(NamedTuple):
    """Which coordinates of the flat vector belong to which tensor (static, numpy).

    Attributes:
      sizes: coordinates of each tensor, in `ravel_pytree` (leaf) order, [L].
      offsets: where each tensor starts, [L].
    """

    sizes: np.ndarray
    offsets: np.ndarray


def segments_of(tree) -> Segments:
    """The tensors of `tree` as contiguous segments of `ravel_pytree(tree)`."""
    sizes = np.array([int(np.prod(np.shape(x))) for x in jax.tree_util.tree_leaves(tree)], np.int64)
    return Segments(sizes, np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64))


def tensor_mean(x: jax.Array, segments: Segments) -> jax.Array:
    """Per-tensor mean over coordinates of x [n, ...] -> [L, ...] (0 for an empty tensor)."""
    means = [
        jnp.mean(x[o : o + s], axis=0) if s else jnp.zeros(x.shape[1:], x.dtype)
        for o, s in zip(segments.offsets, segments.sizes)
    ]
    return jnp.stack(means)


def broadcast(stats: jax.Array, segments: Segments) -> jax.Array:
    """Per-tensor values stats [L, ...] -> [n, ...], each repeated over its tensor's coordinates."""
    return jnp.concatenate(
        [jnp.broadcast_to(stats[i], (s,) + stats.shape[1:]) for i, s in enumerate(segments.sizes)],
        axis=0,
    )


def second_moment_normalize(x: jax.Array, segments: Segments) -> jax.Array:
    """x [n, F] with each feature divided by its RMS over each tensor (plus `NORMALIZER_EPS`)."""
    return x * broadcast(jax.lax.rsqrt(NORMALIZER_EPS + tensor_mean(x**2, segments)), segments)


def update_moments(
    config: LSTMv2Config, momenta: jax.Array, second_moment: jax.Array, grad: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """One step of the moving averages: momenta [n, K] of g, second_moment [n] of g^2."""
    decays = jnp.asarray(config.momentum_decays, grad.dtype)
    momenta = decays * momenta + (1 - decays) * grad[:, None]
    second_moment = config.rms_decay * second_moment + (1 - config.rms_decay) * grad**2
    return momenta, second_moment


def bias_corrected(
    config: LSTMv2Config, momenta: jax.Array, second_moment: jax.Array, count: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """m̂ [n, K] and v̂ [n] after t = count + 1 updates of the moving averages."""
    t = (count + 1).astype(momenta.dtype)
    decays = jnp.asarray(config.momentum_decays, momenta.dtype)
    return momenta / (1 - decays**t), second_moment / (1 - config.rms_decay**t)


class Moments(NamedTuple):
    """What every input is computed from at one step (flat, [n] unless said).

    Attributes:
      grad: this step's gradient.
      m_hat: bias-corrected momenta [n, K]. inv_rms: 1 / sqrt(v̂ + eps).
      steps: updates done before this one, [] float.
      params: parameter values, or None where no selected input needs them.
      segments: the tensors' coordinates (`segments_of`).
    """

    grad: jax.Array
    m_hat: jax.Array
    inv_rms: jax.Array
    steps: jax.Array
    params: jax.Array | None
    segments: Segments


def _tensor_context(c: LSTMv2Config, x: Moments) -> jax.Array:
    stats = jnp.stack(
        [
            0.5 * jnp.log(tensor_mean((x.grad * x.inv_rms) ** 2, x.segments) + LOG_EPS),
            0.5 * jnp.log(tensor_mean(x.params**2, x.segments) + LOG_EPS),
            jnp.log(jnp.asarray(np.maximum(x.segments.sizes, 1), x.grad.dtype)),
        ],
        axis=1,
    )
    return broadcast(stats, x.segments)


def _fill(x: Moments, values: jax.Array) -> jax.Array:
    return jnp.broadcast_to(values, (x.grad.shape[0], values.shape[-1]))


# One function per row of `INPUT_TABLE`: (config, moments) -> features [n, width].
COMPUTE = {
    "log_sign_gradient": lambda c, x: log_sign_features(x.grad, c.preprocess_p),
    "momenta": lambda c, x: x.m_hat,
    "rms_normalized": lambda c, x: (
        jnp.concatenate([x.grad[:, None], x.m_hat], 1) * x.inv_rms[:, None]
    ),
    "step_embedding": lambda c, x: _fill(
        x, jnp.tanh(x.steps / jnp.asarray(c.step_timescales, x.grad.dtype))
    ),
    "horizon_fraction": lambda c, x: _fill(x, (x.steps / c.horizon)[None]),
    "tensor_context": _tensor_context,
    "param": lambda c, x: x.params[:, None],
}


def raw_inputs(
    config: LSTMv2Config,
    grad: jax.Array,
    momenta: jax.Array,
    second_moment: jax.Array,
    count: jax.Array,
    params: jax.Array | None,
    segments: Segments,
) -> dict[str, jax.Array]:
    """Each selected input's features before normalization, name -> [n, width].

    Args:
      config: a v2 configuration.
      grad: this step's flat gradient [n].
      momenta, second_moment: the moving averages, already updated with `grad`.
      count: updates done before this one, [] int.
      params: flat parameter values [n]; needed by inputs whose `needs_params` is set.
      segments: the tensors' coordinates (`segments_of`).
    """
    m_hat, v_hat = bias_corrected(config, momenta, second_moment, count)
    moments = Moments(
        grad,
        m_hat,
        jax.lax.rsqrt(v_hat + config.rms_eps),
        count.astype(grad.dtype),
        params,
        segments,
    )
    return {spec.name: COMPUTE[spec.name](config, moments) for spec in config.selected}


def feature_matrix(
    config: LSTMv2Config, raw: dict[str, jax.Array], segments: Segments
) -> jax.Array:
    """The LSTM's input [n, config.num_features]: the inputs in table order, large ones normalized."""
    parts = [
        second_moment_normalize(raw[spec.name], segments) if spec.normalized else raw[spec.name]
        for spec in config.selected
    ]
    return jnp.concatenate(parts, axis=1)
