"""Character-level language models on Python's own library sources (`tasks.data.stdlib_text`).

A batch is `batch_size` windows of seq_len + 1 consecutive characters that start at random
positions of the training text, drawn inside `jit`: x = window[:-1], y = window[1:], int32
tokens. The loss is the next-character cross-entropy averaged over positions and windows, so
all-zero logits give log(VOCAB_SIZE). The text is cut by position:
[training | validation (`validation_size` characters, optional) | test (the last 10%)], and a
window never crosses a cut.

`tasks.supervised.supervised_task` is not used: its examples are rows of an array, and windows
stored as rows would copy the text seq_len + 1 times; here the text is held once on device and
windows are gathered from it by position.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tasks import losses, models
from tasks.base import Task, TaskFamily
from tasks.data.stdlib_text import VOCAB_SIZE, TextSplits, load_stdlib_text_splits
from tasks.lm_options import CharRNNOptions, LanguageModelOptions, TransformerLMOptions
from tasks.reparameterize import rescaled

TEST_FRACTION = 0.1


def windows(text, starts, seq_len: int) -> dict:
    """The batch {"x": text[s : s + seq_len], "y": text[s + 1 : s + seq_len + 1]} per start s.

    Works on numpy arrays (fixed evaluation windows) and traced jax arrays (minibatches).
    """
    chunks = text[starts[:, None] + np.arange(seq_len + 1)]
    return {"x": chunks[:, :-1], "y": chunks[:, 1:]}


def evenly_spaced_starts(length: int, seq_len: int, count: int) -> np.ndarray:
    """Up to `count` distinct window starts spread evenly over a text of `length` characters."""
    last = length - seq_len - 1  # the last start whose window fits
    return np.linspace(0, last, min(count, last + 1)).astype(np.int32)


def language_model_task(name: str, net, splits: TextSplits, options: LanguageModelOptions) -> Task:
    """Next-character prediction of `splits` by `net` (int tokens [B, T] -> logits [B, T, V]).

    Args:
      name: the task's registry name.
      net: a pure network, `net.init(key, tokens)` and `net.apply(params, tokens)`.
      splits: the token sequences; `options.validation_size` characters at the end of
        `splits.train` become the validation text.
      options: batch size, window length, evaluation and validation sizes.

    Returns:
      The task. `eval_loss` is the mean loss on `options.eval_size` fixed windows evenly
      spaced over the training text; `metrics` has `test_loss` and `test_accuracy` on the
      non-overlapping windows that cover the test text once, and `train_accuracy` on the
      evaluation windows. `sample_validation_batch` is None when `validation_size` is 0.

    Raises:
      ValueError: a text part shorter than one window.
    """
    seq_len, batch_size = options.seq_len, options.batch_size
    n_fit = len(splits.train) - options.validation_size
    if min(n_fit, len(splits.test)) <= seq_len:
        raise ValueError(
            f"{name}: training text of {n_fit} characters (after validation_size) and test "
            f"text of {len(splits.test)} must each hold a window of seq_len + 1 = {seq_len + 1}"
        )
    train = jnp.asarray(splits.train[:n_fit], jnp.int32)
    validation = jnp.asarray(splits.train[n_fit:], jnp.int32)
    eval_batch = windows(
        splits.train, evenly_spaced_starts(n_fit, seq_len, options.eval_size), seq_len
    )
    test_starts = np.arange(0, len(splits.test) - seq_len, seq_len)
    test_batch = windows(splits.test, test_starts, seq_len)
    eval_batch, test_batch = jax.tree_util.tree_map(
        lambda a: jnp.asarray(a, jnp.int32), (eval_batch, test_batch)
    )

    def init(key: jax.Array):
        return net.init(key, eval_batch["x"][:1])

    def loss(params, batch) -> jax.Array:
        return jnp.mean(losses.cross_entropy(net.apply(params, batch["x"]), batch["y"]))

    def sample_from(text: jax.Array, key: jax.Array):
        starts = jax.random.randint(key, (batch_size,), 0, text.shape[0] - seq_len)
        return windows(text, starts, seq_len)

    def metrics(params) -> dict[str, jax.Array]:
        train_logits = net.apply(params, eval_batch["x"])
        test_logits = net.apply(params, test_batch["x"])
        return {
            "test_loss": jnp.mean(losses.cross_entropy(test_logits, test_batch["y"])),
            "train_accuracy": losses.accuracy(train_logits, eval_batch["y"]),
            "test_accuracy": losses.accuracy(test_logits, test_batch["y"]),
        }

    return Task(
        name,
        init,
        loss,
        lambda key: sample_from(train, key),
        lambda params: loss(params, eval_batch),
        metrics,
        (lambda key: sample_from(validation, key)) if options.validation_size else None,
    )


def language_model_family(name: str, options: LanguageModelOptions, net) -> TaskFamily:
    """Instances share the text and the task; they differ only by `param_scale_range`."""
    task = language_model_task(name, net, load_stdlib_text_splits(TEST_FRACTION), options)
    return TaskFamily(name, options, lambda key: rescaled(task, key, options.param_scale_range))


def char_rnn_lm_family(options: CharRNNOptions) -> TaskFamily:
    """`char_rnn_lm`: embedding, an LSTM (or GRU, vanilla RNN) and a linear readout."""
    net = models.char_rnn(VOCAB_SIZE, options.embed_size, options.hidden_size, options.cell)
    return language_model_family("char_rnn_lm", options, net)


def transformer_lm_family(options: TransformerLMOptions) -> TaskFamily:
    """`transformer_lm`: a small causal transformer (`tasks.models.transformer_lm`)."""
    net = models.transformer_lm(
        VOCAB_SIZE,
        options.seq_len,
        options.model_size,
        options.num_heads,
        options.mlp_size,
        options.num_layers,
    )
    return language_model_family("transformer_lm", options, net)
