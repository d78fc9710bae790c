"""Pretrained learned optimizers shipped with the package, loadable by name.

A bundle is a folder `<directory>/<name>/` holding `weights.npz` (the LSTM's
meta-parameters, leaves named by key path, no pickle), `card.json` (the
`LearnedOptimizerConfig` configuration, the sha256 of the weights, and what the card says
about training and evaluation) and `README.md` (the card for people). The shipped
bundles live in `meta_opt/pretrained_optimizers/`; `pretrained(name)` is an ordinary
`optax.GradientTransformation` for any JAX training loop.

`trainers` writes bundles from meta-training runs (`meta-opt export`); nothing here
knows about tasks or runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
from collections.abc import Mapping
from typing import Any

from common import npz_tree
from common.atomic import write_text
from common.errors import UserError
from common.pytree import PyTree
from meta_opt.architectures import LearnedOptimizerConfig, architecture_from_fields

PRETRAINED_DIR = pathlib.Path(__file__).with_name("pretrained_optimizers")
BUNDLE_FORMAT = 1
_WEIGHTS, _CARD, _README = "weights.npz", "card.json", "README.md"


class PretrainedError(UserError, ValueError):
    """An unknown name, or a bundle that is missing a file, corrupt, or does not fit its config."""


def _folder(directory: str | os.PathLike | None) -> pathlib.Path:
    return pathlib.Path(directory) if directory is not None else PRETRAINED_DIR


def list_pretrained(directory: str | os.PathLike | None = None) -> list[str]:
    """The names of the bundles in `directory` (default: the shipped ones), sorted."""
    folder = _folder(directory)
    if not folder.is_dir():
        return []
    return sorted(
        p.name for p in folder.iterdir() if (p / _CARD).is_file() and (p / _WEIGHTS).is_file()
    )


def pretrained_card(name: str, directory: str | os.PathLike | None = None) -> dict[str, Any]:
    """The card of bundle `name`: its optimizer configuration and what it was trained and evaluated on.

    Raises:
      PretrainedError: `name` is not a bundle (the message lists the known ones), or its card is unreadable.
    """
    bundle = _folder(directory) / name
    if name not in list_pretrained(directory):
        known = ", ".join(list_pretrained(directory)) or "none"
        raise PretrainedError(
            f"no pretrained optimizer {name!r} in {_folder(directory)}; known: {known}"
        )
    try:
        card = json.loads((bundle / _CARD).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise PretrainedError(f"{bundle / _CARD}: unreadable card ({err})") from None
    if card.get("format") != BUNDLE_FORMAT or not isinstance(card.get("lstm"), dict):
        raise PretrainedError(
            f"{bundle / _CARD}: not a format-{BUNDLE_FORMAT} card with an 'lstm' section"
        )
    return card


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _lstm_config(card: Mapping[str, Any], where: pathlib.Path) -> LearnedOptimizerConfig:
    try:  # cards written before the architecture registry have no `kind`
        return architecture_from_fields(card["lstm"])
    except (TypeError, ValueError) as err:
        raise PretrainedError(
            f"{where}: its 'lstm' section is not a learned-optimizer configuration ({err})"
        ) from None


def load_pretrained(
    name: str, directory: str | os.PathLike | None = None
) -> tuple[LearnedOptimizerConfig, PyTree]:
    """The configuration and meta-parameters of bundle `name`, checked against each other.

    Raises:
      PretrainedError: unknown name, weights that do not match the card's checksum (corrupt
        or replaced), or weights whose names or shapes do not fit the configured LSTM.
    """
    import jax
    import jax.numpy as jnp

    card = pretrained_card(name, directory)
    bundle = _folder(directory) / name
    config = _lstm_config(card, bundle / _CARD)
    if _sha256(bundle / _WEIGHTS) != card.get("weights_sha256"):
        raise PretrainedError(
            f"{bundle / _WEIGHTS}: checksum differs from the card's (corrupt or replaced)"
        )
    try:
        meta_params = npz_tree.decode(
            npz_tree.read_npz(bundle / _WEIGHTS), where=str(bundle / _WEIGHTS)
        )
    except ValueError as err:
        raise PretrainedError(str(err)) from None
    expected = jax.eval_shape(config.init, jax.random.PRNGKey(0))
    shapes = lambda tree: jax.tree_util.tree_map(lambda x: tuple(x.shape), tree)
    if shapes(meta_params) != shapes(expected):
        raise PretrainedError(
            f"{bundle / _WEIGHTS}: weights do not fit the card's LSTM configuration "
            f"(stored {shapes(meta_params)}, expected {shapes(expected)})"
        )
    return config, jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), meta_params)


def pretrained(name: str, directory: str | os.PathLike | None = None):
    """The shipped learned optimizer `name` as an `optax.GradientTransformation`.

    Usable in any JAX training loop, like `optax.adam(...)`: `tx.init(params)`, then
    `updates, state = tx.update(grads, state)` and `optax.apply_updates(params, updates)`.
    Its step size is learned; the card (`pretrained_card(name)`) says on what.
    """
    config, meta_params = load_pretrained(name, directory)
    return config.transformation(meta_params)


def save_pretrained(
    name: str,
    config: LearnedOptimizerConfig,
    meta_params: PyTree,
    card: Mapping[str, Any],
    readme: str,
    directory: str | os.PathLike | None = None,
) -> pathlib.Path:
    """Writes bundle `name` (weights, card.json with `card` plus the configuration and checksum,
    README.md); each file atomically, weights before the card that vouches for them.

    Returns:
      The bundle's folder.
    """
    bundle = _folder(directory) / name
    npz_tree.write_npz(bundle / _WEIGHTS, npz_tree.encode(meta_params))
    full = {
        **card,
        "format": BUNDLE_FORMAT,
        "name": name,
        "lstm": json.loads(json.dumps(dataclasses.asdict(config))),
        "weights_sha256": _sha256(bundle / _WEIGHTS),
    }
    write_text(bundle / _CARD, json.dumps(full, indent=2, sort_keys=True) + "\n")
    write_text(bundle / _README, readme)
    return bundle
