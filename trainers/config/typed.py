"""Plain data <-> frozen config dataclasses, built by dacite and checked strictly.

dacite builds the dataclasses. Type hooks keep the project's rules: ints become
floats, bools are never ints or floats, Literal values match in type, YAML lists
become tuples (a `list[X]` field keeps a list: dacite checks it as one), unknown
and missing keys, item keys (`a.b[1]`, `a.m.k`) and `__post_init__` errors are
reported at their dotted key. A field typed by a base class with a
`config_variant(data) -> (subclass, data)` classmethod (the learned-optimizer
architectures) is built as the subclass the data names. The hooks of a type are derived from its type hints
alone and memoized in `_HOOKS` (a cache: the same schema always gets the same hooks).
Reading files and overrides is `trainers.config.loader`.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import dacite
from dacite import (
    DaciteError,
    DaciteFieldError,
    MissingValueError,
    UnexpectedDataError,
    WrongTypeError,
)

from common.errors import UserError

T = TypeVar("T")
_HOOKS: dict[Any, Any] = {}  # memo of `_register`: type -> its dacite type hook
_SEEN: set[Any] = set()
_DACITE = dacite.Config(strict=True, cast=[tuple], type_hooks=_HOOKS)


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


class _Problem(DaciteFieldError):
    """A problem a hook found; dacite prefixes field names to its field_path as it rises."""

    def __init__(self, problem: str, field_path: str | None = None):
        super().__init__(field_path)
        self.problem = problem


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


@functools.cache
def _probe(tp: Any) -> type:
    return dataclasses.make_dataclass("_Probe", [("v", tp)])


def _build(tp: Any, value: Any, rel: str) -> Any:
    """dacite on one value of type `tp`; its errors' paths start with `rel` (e.g. "[1]")."""
    try:
        return value if tp is Any else dacite.from_dict(_probe(tp), {"v": value}, _DACITE).v
    except DaciteFieldError as err:
        err.field_path = (rel + (err.field_path or "v")[1:]).lstrip(".") or None
        raise


def _dataclass_hook(cls: type, data: Any) -> Any:
    if not isinstance(data, Mapping):
        return data  # dacite reports it, naming the declared type (e.g. "Inner | None")
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    for name in data:
        if name not in names:
            raise _Problem(f"unknown key; valid keys: {', '.join(names) or '(none)'}", str(name))
    for f in dataclasses.fields(cls):  # dacite would fill a missing Optional field with None
        if f.init and f.name not in data and f.default is f.default_factory is dataclasses.MISSING:
            raise _Problem("missing required key", f.name)
    try:
        return dacite.from_dict(cls, data, _DACITE)
    except (TypeError, ValueError) as err:  # a __post_init__ check of the schema
        raise _Problem(str(err)) from err


def _variant_hook(tp: type, data: Any) -> Any:
    """A field typed by a base class: build the subclass its `config_variant(data)` names."""
    if not isinstance(data, Mapping):
        return data
    try:
        cls, data = tp.config_variant(data)
    except ValueError as err:
        key, _, problem = str(err).partition(": ")
        raise _Problem(problem or key, key if problem else None) from err
    _register(cls)
    return _HOOKS[cls](data)


def _scalar_hook(tp: Any, value: Any) -> Any:
    if get_origin(tp) is Literal:  # dacite takes True and 1.0 for 1
        ok = any(type(value) is type(a) and value == a for a in get_args(tp))
    else:  # dacite takes bools for ints and floats, and keeps ints in float fields
        ok = not isinstance(value, bool)
        value = float(value) if tp is float and isinstance(value, int) and ok else value
    if not ok:
        raise WrongTypeError(tp, value)
    return value


def _optional_hook(tp: Any, arm: Any, value: Any) -> Any:
    try:
        return None if value is None else _build(arm, value, "")
    except WrongTypeError as err:
        if err.field_path:  # a nested problem: report it as is
            raise
        raise WrongTypeError(tp, value) from None


def _sequence_hook(tp: Any, value: Any) -> Any:
    if not isinstance(value, (list, tuple)):  # dacite would iterate a string
        raise WrongTypeError(tp, value)
    args = get_args(tp)
    if get_origin(tp) is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            raise _Problem(
                f"expected {_type_name(tp)} ({len(args)} items), got {describe_value(value)}"
            )
    else:
        args = (args[0] if args else Any,) * len(value)
    items = tuple(_build(t, v, f"[{i}]") for i, (t, v) in enumerate(zip(args, value)))
    return list(items) if list in (tp, get_origin(tp)) else items


def _mapping_hook(tp: Any, value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise WrongTypeError(tp, value)
    key_tp, value_tp = get_args(tp) or (Any, Any)
    return {
        _build(key_tp, k, f" (key {k!r})"): _build(value_tp, v, str(k)) for k, v in value.items()
    }


def _register(tp: Any) -> None:
    """Adds hooks for `tp` and the types inside it to the shared dacite config."""
    if tp in _SEEN:
        return
    _SEEN.add(tp)
    origin, args = get_origin(tp), get_args(tp)
    hook = functools.partial
    if isinstance(tp, type) and hasattr(tp, "config_variant") and not dataclasses.is_dataclass(tp):
        _HOOKS[tp], args = hook(_variant_hook, tp), ()
    elif dataclasses.is_dataclass(tp):
        _HOOKS[tp], args = hook(_dataclass_hook, tp), tuple(typing.get_type_hints(tp).values())
    elif tp in (int, float) or origin is Literal:
        _HOOKS[tp], args = hook(_scalar_hook, tp), ()
    elif origin in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
        _HOOKS[tp] = hook(_optional_hook, tp, next(a for a in args if a is not type(None)))
    elif collections.abc.Sequence in (tp, origin) or tuple in (tp, origin) or list in (tp, origin):
        _HOOKS[tp] = hook(_sequence_hook, tp)
    elif collections.abc.Mapping in (tp, origin) or dict in (tp, origin):
        _HOOKS[tp] = hook(_mapping_hook, tp)
    for arg in args:
        if arg is not Ellipsis:
            _register(arg)


def from_dict(
    cls: type[T], data: Mapping[str, Any], *, source: str = "<dict>", path: str = ""
) -> T:
    """Builds a (frozen) dataclass from plain data, checking it against the type hints."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"expected {_type_name(cls)}, got {describe_value(data)}", key=path, source=source
        )
    _register(cls)
    try:
        return _HOOKS[cls](data)
    except DaciteError as err:
        key = ".".join(p for p in (path, getattr(err, "field_path", None)) if p)
        if isinstance(err, WrongTypeError):  # UnionMatchError included
            problem = f"expected {_type_name(err.field_type)}, got {describe_value(err.value)}"
        else:  # hooks find unknown and missing keys before dacite does
            problem = {
                _Problem: getattr(err, "problem", ""),
                MissingValueError: "missing required key",
                UnexpectedDataError: f"unknown key(s): {getattr(err, 'keys', '')}",
            }.get(type(err), str(err))
        raise ConfigError(
            problem, key=key.replace(".[", "[").replace(". (", " ("), source=source
        ) from None


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
