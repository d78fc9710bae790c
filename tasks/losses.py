"""Per-example losses and metrics shared by the tasks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Softmax cross-entropy per example, integer labels."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of examples whose arg-max logit is the label."""
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


def squared_error(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Squared error per example, summed over every non-batch axis."""
    diff = (predictions - targets).reshape(predictions.shape[0], -1)
    return jnp.sum(diff**2, axis=-1)
