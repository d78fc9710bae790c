"""Gradient preprocessing for coordinatewise learned optimizers.

Gradients span many orders of magnitude across coordinates and tasks; an LSTM
sees them better as (magnitude exponent, sign). Andrychowicz et al. (2016),
appendix A:

    g -> (log|g| / p, sign g)   if |g| >= e^-p
    g -> (-1, e^p g)            otherwise

References:
  Andrychowicz et al., "Learning to learn by gradient descent by gradient
  descent", NeurIPS 2016.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def log_sign_features(g: jax.Array, p: float) -> jax.Array:
    """Maps a gradient array [...] to features [..., 2] by the formula above.

    Finite for every finite input (zero included); the logarithm is taken of a
    value clipped at e^-p, so gradients through this function are finite too.

    Args:
      g: gradient values, any shape.
      p: the scale p > 0 (the paper uses 10).

    Returns:
      Features with a trailing axis of 2: (log part, sign part).
    """
    if p <= 0:
        raise ValueError(f"preprocessing scale p must be positive, got {p}")
    threshold = jnp.exp(-p)
    large = jnp.abs(g) >= threshold
    safe_magnitude = jnp.maximum(jnp.abs(g), threshold)
    log_part = jnp.where(large, jnp.log(safe_magnitude) / p, -1.0)
    sign_part = jnp.where(large, jnp.sign(g), jnp.exp(p) * g)
    return jnp.stack([log_part, sign_part], axis=-1).astype(g.dtype)


def gradient_features(g: jax.Array, p: float | None) -> jax.Array:
    """Features of one gradient-like array: log/sign pairs for p > 0, else the raw value.

    Args:
      g: values, any shape.
      p: the preprocessing scale, or None (or 0) to feed raw values.

    Returns:
      [..., 2] features when preprocessing, else [..., 1].
    """
    if not p:
        return g[..., None]
    return log_sign_features(g, p)
