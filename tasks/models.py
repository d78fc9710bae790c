"""Haiku networks used by the tasks.

Haiku stays behind this module (docs/ARCHITECTURE.md, "Haiku"): every task sees a
network only as an `hk.Transformed` pair of pure functions, so a port to another
module library touches this file alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import haiku as hk
import jax
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "sigmoid": jax.nn.sigmoid,
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
}


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """Returns the activation function called `name` (sigmoid, relu or tanh)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def mlp(hidden_sizes: Sequence[int], output_size: int, act: str) -> hk.Transformed:
    """A fully connected network on flattened inputs, linear output layer."""

    def forward(x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        return hk.nets.MLP([*hidden_sizes, output_size], activation=activation(act))(x)

    return hk.without_apply_rng(hk.transform(forward))


def convnet(channels: Sequence[int], num_classes: int, act: str) -> hk.Transformed:
    """Conv 3x3 -> activation -> 2x2 max-pool per entry of `channels`, then a linear head."""

    def forward(x: jax.Array) -> jax.Array:
        for width in channels:
            x = hk.Conv2D(width, kernel_shape=3)(x)
            x = activation(act)(x)
            x = hk.max_pool(x, window_shape=2, strides=2, padding="SAME")
        return hk.Linear(num_classes)(x.reshape(x.shape[0], -1))

    return hk.without_apply_rng(hk.transform(forward))


def autoencoder(encoder_sizes: Sequence[int], act: str) -> hk.Transformed:
    """A deep autoencoder: encoder widths, the mirrored decoder, sigmoid reconstruction.

    The reconstruction has the input's shape.

    The code layer (last encoder width) is linear, as in Hinton & Salakhutdinov
    (2006); the reconstruction lies in [0, 1] like the pixels it approximates.
    """

    def forward(x: jax.Array) -> jax.Array:
        flat = x.reshape(x.shape[0], -1)
        encode = hk.nets.MLP(encoder_sizes, activation=activation(act), name="encoder")
        decoder_sizes = [*reversed(encoder_sizes[:-1]), flat.shape[-1]]
        decode = hk.nets.MLP(decoder_sizes, activation=activation(act), name="decoder")
        code = encode(flat)
        return jax.nn.sigmoid(decode(activation(act)(code))).reshape(x.shape)

    return hk.without_apply_rng(hk.transform(forward))


def deep_linear(widths: Sequence[int]) -> hk.Transformed:
    """A product of bias-free linear maps x -> W_K ... W_1 x (`widths` = layer outputs)."""

    def forward(x: jax.Array) -> jax.Array:
        for i, width in enumerate(widths):
            x = hk.Linear(width, with_bias=False, name=f"layer_{i}")(x)
        return x

    return hk.without_apply_rng(hk.transform(forward))
