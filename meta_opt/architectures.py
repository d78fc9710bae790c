"""Learned-optimizer architectures by `kind`: the registry, the base class, and loading from data.

An architecture is two modules: a configuration (a frozen dataclass deriving from
`LearnedOptimizerConfig`, no JAX, so that configs load without it) and an
implementation its `implementation` attribute names, which provides

    init_meta_params(config, key) -> meta_params
    transformation(config, meta_params) -> optax.GradientTransformation

`ARCHITECTURES` maps each `kind` to its configuration class as "module:Class".
Names are resolved with importlib when used, so this module imports neither the
configurations nor the implementations (none of them imports back into a cycle).

Data written before the registry (checkpoints' config.yaml, the shipped bundles'
cards) has no `kind`: non-empty `inputs` meant v2, and every field of both
versions was written. `select_architecture` reads such data as the version it
was, dropping the other version's fields where they still hold their defaults.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any, ClassVar

ARCHITECTURES: Mapping[str, str] = {
    "lstm_v1": "meta_opt.lstm_v1_config:LSTMv1Config",
    "lstm_v2": "meta_opt.lstm_v2_config:LSTMv2Config",
    "hierarchical": "meta_opt.hierarchical_config:HierarchicalConfig",
}


def resolve(reference: str) -> Any:
    """The object a "package.module:name" reference names."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


class LearnedOptimizerConfig:
    """Base of every architecture's configuration (subclasses are frozen dataclasses).

    Subclasses set `kind` (a dataclass field whose default is the registry key) and
    `implementation` (the module of `init_meta_params` and `transformation`).
    """

    kind: str
    implementation: ClassVar[str]

    def init(self, key):
        """Fresh meta-parameters of this architecture."""
        return resolve(f"{self.implementation}:init_meta_params")(self, key)

    def transformation(self, meta_params):
        """The optax transformation that applies this optimizer with `meta_params`.

        Works for any params pytree, under `jit` and `vmap`, and is differentiable with
        respect to `meta_params`; `needs_params` says whether `update` must get `params`.
        """
        return resolve(f"{self.implementation}:transformation")(self, meta_params)

    @property
    def needs_params(self) -> bool:
        """Whether `update` must be given the parameters."""
        return False

    @property
    def summary(self) -> str:
        """One line saying what this optimizer is, for cards and reports."""
        return self.kind

    @classmethod
    def config_variant(cls, data: Mapping[str, Any]) -> tuple[type, dict[str, Any]]:
        """The concrete class and fields that plain `data` describe (`trainers.config.typed`)."""
        return select_architecture(data)


def architecture_class(kind: str) -> type:
    """The configuration class registered as `kind`.

    Raises:
      ValueError: an unknown kind (the message lists the known ones).
    """
    if kind not in ARCHITECTURES:
        raise ValueError(f"kind: unknown architecture {kind!r}; known: {', '.join(ARCHITECTURES)}")
    return resolve(ARCHITECTURES[kind])


def select_architecture(data: Mapping[str, Any]) -> tuple[type, dict[str, Any]]:
    """The class `data` describes and the fields to build it with (see the module docstring).

    Raises:
      ValueError: an unknown kind, or pre-registry data setting the other version's
        fields away from their defaults (named).
    """
    fields = dict(data)
    if "kind" in fields:
        kind = fields["kind"]
        if not isinstance(kind, str):
            raise ValueError(f"kind: expected a string, got {kind!r}")
        return architecture_class(kind), fields
    kind = "lstm_v2" if fields.get("inputs") else "lstm_v1"
    cls = architecture_class(kind)
    other = architecture_class("lstm_v1" if kind == "lstm_v2" else "lstm_v2")
    own = {f.name for f in dataclasses.fields(cls)}
    if kind == "lstm_v1" and "inputs" in fields:
        del fields["inputs"]  # the empty selector of version 1
    for f in dataclasses.fields(other):
        if f.name in fields and f.name not in own:
            if fields[f.name] != _plain(f.default):
                raise ValueError(
                    f"{f.name}: only used by {other.kind}; set kind: {other.kind} (or, "
                    f"without kind, non-empty inputs for lstm_v2) or leave it at its default"
                )
            del fields[f.name]
    return cls, fields


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def architecture_from_fields(fields: Mapping[str, Any]) -> LearnedOptimizerConfig:
    """The configuration plain `fields` describe (lists taken as tuples), kind or none."""
    cls, fields = select_architecture(
        {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}
    )
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
