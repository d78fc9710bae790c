"""Plain data <-> frozen config dataclasses, checked strictly against their type hints.

`from_dict` walks the type hints and the data together, so every problem is
reported at its dotted key (`a.b[1]`, `a.m.k`, `a.m (key 'k')`). The rules: ints
are accepted (as floats) where floats are, bools are never ints or floats, Literal
values match in type, YAML lists become tuples (a `list[X]` field keeps a list),
unknown and missing keys are errors, and a `__post_init__` check's error is
reported at its dataclass's key. A field typed by a base class with a
`config_variant(data) -> (subclass, data)` classmethod (the learned-optimizer
architectures) is built as the subclass the data names. Reading files and
overrides is `trainers.config.loader`.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from common.errors import UserError

T = TypeVar("T")


class ConfigError(UserError, ValueError):
    """A config problem, located by dotted key, source file and override."""

    def __init__(self, problem: str, *, key: str = "", source: str = "", override: str = ""):
        super().__init__(problem)
        self.problem, self.key, self.source, self.override = problem, key, source, override

    def __str__(self) -> str:
        where = [self.source] if self.source else []
        if self.key:
            where.append(
                self.key + (f" (from override {self.override!r})" if self.override else "")
            )
        elif self.override:
            where.append(f"override {self.override!r}")
        return ": ".join([*where, self.problem])


def describe_value(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "None"
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if dataclasses.is_dataclass(tp):
        return f"a mapping for {tp.__name__}"
    if isinstance(tp, type) and not get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "").replace("collections.abc.", "")


class _WrongType(ConfigError):
    """A value not of its field's type (an `X | None` field reports its own type instead)."""


def _wrong_type(tp: Any, value: Any, key: str) -> ConfigError:
    return _WrongType(f"expected {_type_name(tp)}, got {describe_value(value)}", key=key)


def _at(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    """The init fields of a dataclass and their resolved type hints, in declaration order."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _dataclass(cls: type, data: Any, key: str) -> Any:
    if not isinstance(data, Mapping):
        raise _wrong_type(cls, data, key)
    fields = _field_types(cls)
    for name in data:
        if name not in fields:
            problem = f"unknown key; valid keys: {', '.join(fields) or '(none)'}"
            raise ConfigError(problem, key=_at(key, str(name)))
    for f in dataclasses.fields(cls):
        if f.init and f.name not in data and f.default is f.default_factory is dataclasses.MISSING:
            raise ConfigError("missing required key", key=_at(key, f.name))
    values = {name: _convert(fields[name], value, _at(key, name)) for name, value in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:  # a __post_init__ check of the schema
        raise ConfigError(str(err), key=key) from err


def _variant(tp: type, data: Any, key: str) -> Any:
    """A field typed by a base class: the subclass its `config_variant(data)` names."""
    if not isinstance(data, Mapping):
        raise _wrong_type(tp, data, key)
    try:
        cls, data = tp.config_variant(data)
    except ValueError as err:  # "field: problem", or a problem of the whole mapping
        name, _, problem = str(err).partition(": ")
        where = _at(key, name) if problem else key
        raise ConfigError(problem or name, key=where) from None
    return _dataclass(cls, data, key)


def _sequence(tp: Any, value: Any, key: str) -> Any:
    if not isinstance(value, (list, tuple)):  # a string is not a sequence of items here
        raise _wrong_type(tp, value, key)
    args = get_args(tp)
    if get_origin(tp) is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            problem = f"expected {_type_name(tp)} ({len(args)} items), got {describe_value(value)}"
            raise ConfigError(problem, key=key)
    else:
        args = (args[0] if args else Any,) * len(value)
    items = tuple(_convert(t, v, f"{key}[{i}]") for i, (t, v) in enumerate(zip(args, value)))
    return list(items) if list in (tp, get_origin(tp)) else items


def _mapping(tp: Any, value: Any, key: str) -> dict[Any, Any]:
    if not isinstance(value, Mapping):
        raise _wrong_type(tp, value, key)
    key_tp, value_tp = get_args(tp) or (Any, Any)
    return {
        _convert(key_tp, k, f"{key} (key {k!r})"): _convert(value_tp, v, _at(key, str(k)))
        for k, v in value.items()
    }


def _convert(tp: Any, value: Any, key: str) -> Any:
    """`value` checked against (and converted to) type `tp`; errors name `key`."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if len(args) != 2 or type(None) not in args:
            raise TypeError(f"config types support X | None unions only, not {tp}")
        if value is None:
            return None
        try:
            return _convert(next(a for a in args if a is not type(None)), value, key)
        except _WrongType as err:
            raise _wrong_type(tp, value, key) if err.key == key else err from None
    if origin is Literal:
        if not any(type(value) is type(a) and value == a for a in args):
            raise _wrong_type(tp, value, key)
        return value
    if isinstance(tp, type) and hasattr(tp, "config_variant") and not dataclasses.is_dataclass(tp):
        return _variant(tp, value, key)
    if dataclasses.is_dataclass(tp):
        return _dataclass(tp, value, key)
    if collections.abc.Mapping in (tp, origin) or dict in (tp, origin):
        return _mapping(tp, value, key)
    if any(s in (tp, origin) for s in (collections.abc.Sequence, tuple, list)):
        return _sequence(tp, value, key)
    if tp in (int, float):  # bools are ints to Python, not to a config
        if isinstance(value, bool) or not isinstance(value, int if tp is int else int | float):
            raise _wrong_type(tp, value, key)
        return tp(value)
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise _wrong_type(tp, value, key)


def from_dict(
    cls: type[T], data: Mapping[str, Any], *, source: str = "<dict>", path: str = ""
) -> T:
    """Builds a (frozen) dataclass from plain data, checking it against the type hints."""
    try:
        return _convert(cls, data, path)
    except ConfigError as err:
        raise ConfigError(err.problem, key=err.key, source=source) from None


def to_dict(config: Any) -> dict[str, Any]:
    """Plain, `yaml.safe_dump`-able data of a config: the inverse of `from_dict`."""
    return {f.name: to_plain(getattr(config, f.name)) for f in dataclasses.fields(config) if f.init}


def to_plain(value: Any) -> Any:
    """Plain data of one config value: dataclasses and mappings as dicts, sequences as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    return [to_plain(v) for v in value] if isinstance(value, (list, tuple)) else value
