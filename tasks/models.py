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


def layernorm_mlp(hidden_sizes: Sequence[int], output_size: int, act: str) -> hk.Transformed:
    """An MLP whose hidden layers are linear -> LayerNorm -> activation, linear output layer.

    The normalization acts on each layer's summed inputs, before the nonlinearity, as in
    Ba et al. (2016); its scale and offset are learned.

    References:
      Ba, Kiros & Hinton (2016), "Layer normalization", arXiv:1607.06450.
    """

    def forward(x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        for i, width in enumerate(hidden_sizes):
            x = hk.Linear(width, name=f"linear_{i}")(x)
            x = hk.LayerNorm(-1, create_scale=True, create_offset=True, name=f"layer_norm_{i}")(x)
            x = activation(act)(x)
        return hk.Linear(output_size, name=f"linear_{len(hidden_sizes)}")(x)

    return hk.without_apply_rng(hk.transform(forward))


RNN_CELLS: dict[str, Callable[[int], hk.RNNCore]] = {
    "lstm": hk.LSTM,
    "gru": hk.GRU,
    "vanilla": hk.VanillaRNN,
}


def char_rnn(vocab_size: int, embed_size: int, hidden_size: int, cell: str) -> hk.Transformed:
    """A recurrent language model: int tokens [B, T] -> next-token logits [B, T, vocab_size].

    Embedding, one recurrent core (`RNN_CELLS`) unrolled from its zero initial state, and a
    linear readout of every step's output.
    """
    if cell not in RNN_CELLS:
        raise ValueError(f"unknown cell {cell!r}; choose one of {sorted(RNN_CELLS)}")

    def forward(tokens: jax.Array) -> jax.Array:
        x = hk.Embed(vocab_size, embed_size)(tokens)
        core = RNN_CELLS[cell](hidden_size)
        outputs, _ = hk.dynamic_unroll(
            core, x, core.initial_state(tokens.shape[0]), time_major=False
        )
        return hk.Linear(vocab_size)(outputs)

    return hk.without_apply_rng(hk.transform(forward))


def transformer_lm(
    vocab_size: int,
    max_len: int,
    model_size: int,
    num_heads: int,
    mlp_size: int,
    num_layers: int,
) -> hk.Transformed:
    """A causal pre-LayerNorm transformer: int tokens [B, T] -> logits [B, T, vocab_size].

    Token embedding plus a learned positional embedding (T <= `max_len`), `num_layers` blocks
    x += attention(LN(x)) with a causal mask, x += MLP(LN(x)) (GELU), then LN and a linear
    readout. Position t attends to positions <= t only, so its logits do not depend on later
    tokens.

    References:
      Vaswani et al. (2017), "Attention is all you need"; Radford et al. (2019), GPT-2 (the
      pre-LayerNorm block).
    """

    def layer_norm(name: str) -> hk.LayerNorm:
        return hk.LayerNorm(-1, create_scale=True, create_offset=True, name=name)

    def forward(tokens: jax.Array) -> jax.Array:
        length = tokens.shape[1]
        positional = hk.get_parameter(
            "positional", [max_len, model_size], init=hk.initializers.TruncatedNormal(0.02)
        )
        x = hk.Embed(vocab_size, model_size)(tokens) + positional[:length]
        causal = jnp.tril(jnp.ones((1, 1, length, length), bool))
        for i in range(num_layers):
            h = layer_norm(f"ln_attention_{i}")(x)
            x += hk.MultiHeadAttention(
                num_heads,
                model_size // num_heads,
                w_init=hk.initializers.VarianceScaling(1.0),
                name=f"attention_{i}",
            )(h, h, h, mask=causal)
            h = layer_norm(f"ln_mlp_{i}")(x)
            x += hk.nets.MLP([mlp_size, model_size], activation=jax.nn.gelu, name=f"mlp_{i}")(h)
        return hk.Linear(vocab_size, name="readout")(layer_norm("ln_final")(x))

    return hk.without_apply_rng(hk.transform(forward))
