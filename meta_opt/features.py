"""Per-coordinate inputs of the v2 learned optimizer (`LSTMOptimizer.inputs`).

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

Inputs that can be large ("momenta", "rms_normalized", "param") are divided,
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

from meta_opt.options import INPUTS, LSTMOptimizer
from meta_opt.preprocess import log_sign_features

NORMALIZED = ("momenta", "rms_normalized", "param")
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
    config: LSTMOptimizer, momenta: jax.Array, second_moment: jax.Array, grad: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """One step of the moving averages: momenta [n, K] of g, second_moment [n] of g^2."""
    decays = jnp.asarray(config.momentum_decays, grad.dtype)
    momenta = decays * momenta + (1 - decays) * grad[:, None]
    second_moment = config.rms_decay * second_moment + (1 - config.rms_decay) * grad**2
    return momenta, second_moment


def bias_corrected(
    config: LSTMOptimizer, momenta: jax.Array, second_moment: jax.Array, count: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """m̂ [n, K] and v̂ [n] after t = count + 1 updates of the moving averages."""
    t = (count + 1).astype(momenta.dtype)
    decays = jnp.asarray(config.momentum_decays, momenta.dtype)
    return momenta / (1 - decays**t), second_moment / (1 - config.rms_decay**t)


def raw_inputs(
    config: LSTMOptimizer,
    grad: jax.Array,
    momenta: jax.Array,
    second_moment: jax.Array,
    count: jax.Array,
    params: jax.Array | None,
    segments: Segments,
) -> dict[str, jax.Array]:
    """Each selected input's features before normalization, name -> [n, width].

    Args:
      config: a v2 configuration (`inputs` non-empty).
      grad: this step's flat gradient [n].
      momenta, second_moment: the moving averages, already updated with `grad`.
      count: updates done before this one, [] int.
      params: flat parameter values [n]; needed by "tensor_context" and "param".
      segments: the tensors' coordinates (`segments_of`).
    """
    n, dtype, names = grad.shape[0], grad.dtype, config.inputs
    m_hat, v_hat = bias_corrected(config, momenta, second_moment, count)
    inv_rms = jax.lax.rsqrt(v_hat + config.rms_eps)
    steps = count.astype(dtype)
    out = {}
    if "log_sign_gradient" in names:
        out["log_sign_gradient"] = log_sign_features(grad, config.preprocess_p)
    if "momenta" in names:
        out["momenta"] = m_hat
    if "rms_normalized" in names:
        out["rms_normalized"] = jnp.concatenate([grad[:, None], m_hat], axis=1) * inv_rms[:, None]
    if "step_embedding" in names:
        timescales = jnp.asarray(config.step_timescales, dtype)
        out["step_embedding"] = jnp.broadcast_to(jnp.tanh(steps / timescales), (n, len(timescales)))
    if "horizon_fraction" in names:
        out["horizon_fraction"] = jnp.broadcast_to(steps / config.horizon, (n, 1))
    if "tensor_context" in names:
        stats = jnp.stack(
            [
                0.5 * jnp.log(tensor_mean((grad * inv_rms) ** 2, segments) + LOG_EPS),
                0.5 * jnp.log(tensor_mean(params**2, segments) + LOG_EPS),
                jnp.log(jnp.asarray(np.maximum(segments.sizes, 1), dtype)),
            ],
            axis=1,
        )
        out["tensor_context"] = broadcast(stats, segments)
    if "param" in names:
        out["param"] = params[:, None]
    return out


def feature_matrix(
    config: LSTMOptimizer, raw: dict[str, jax.Array], segments: Segments
) -> jax.Array:
    """The LSTM's input [n, config.num_features]: the inputs in `INPUTS` order, large ones normalized."""
    parts = [
        second_moment_normalize(raw[name], segments) if name in NORMALIZED else raw[name]
        for name in INPUTS
        if name in config.inputs
    ]
    return jnp.concatenate(parts, axis=1)
