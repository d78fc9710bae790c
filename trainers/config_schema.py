"""Config schemas: plain data <-> frozen dataclasses, checked against type hints.

`from_dict` checks plain data (as `yaml.safe_load` returns it) against a frozen
dataclass's type hints, so a typo or a wrong type fails at load time with the
dotted key and the source, instead of deep inside a traced function. Reading
files and overrides lives in `trainers.config`.

Storage choices, so that a schema needs no custom code:
  * `list[X]`, `tuple[X, ...]` and `Sequence[X]` are stored as tuples (immutable,
    hashable); `to_dict` writes them back as lists.
  * `dict[str, X]` and `Mapping[str, X]` are stored as a fresh plain `dict` (not a
    `types.MappingProxyType`, which cannot be pickled, deep-copied or passed to
    `dataclasses.asdict`). Treat it as read-only. A config holding one is not
    hashable (neither would it be with a proxy).
  * Values typed `Any` are kept as loaded (a YAML list stays a list).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import types
import typing
from typing import Any, Literal, Mapping, TypeVar, Union, get_args, get_origin

T = TypeVar("T")
_SEQUENCES = (tuple, list, collections.abc.Sequence)
_MAPPINGS = (dict, collections.abc.Mapping)


class ConfigError(ValueError):
    """A config problem, located by dotted key, source file and override.

    Args:
      problem: what is wrong, e.g. "expected int, got str 'three'".
      key: dotted path of the offending key, e.g. "task.batch_size" ("" = top level).
      source: the file (or "<dict>") the data came from.
      override: the override string that set the key, if one did.
    """

    def __init__(self, problem: str, *, key: str = "", source: str = "", override: str = ""):
        super().__init__(problem)
        self.problem, self.key, self.source, self.override = problem, key, source, override

    def __str__(self) -> str:
        where = [self.source] if self.source else []
        if self.key:
            by = f" (from override {self.override!r})" if self.override else ""
            where.append(self.key + by)
        elif self.override:
            where.append(f"override {self.override!r}")
        return ": ".join([*where, self.problem])


def describe_value(value: Any) -> str:
    """Type and (shortened) repr of a value, for error messages."""
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


def _mismatch(tp: Any, value: Any, key: str, source: str) -> ConfigError:
    problem = f"expected {_type_name(tp)}, got {describe_value(value)}"
    return ConfigError(problem, key=key, source=source)


def from_dict(
    cls: type[T], data: Mapping[str, Any], *, source: str = "<dict>", path: str = ""
) -> T:
    """Builds a (frozen) dataclass from plain data, checking it against the type hints.

    Args:
      cls: a dataclass type; nested dataclass fields are built recursively.
      data: plain data as `yaml.safe_load` returns it. Keys left out take the
        field defaults.
      source: where `data` came from, named in errors (a file path).
      path: dotted key of `data` inside the whole config, named in errors.

    Returns:
      A `cls` instance with sequences as tuples and floats as `float`.

    Raises:
      ConfigError: on an unknown key (listing the valid ones), a missing required
        key, or a value of the wrong type (naming expected type and value).
    """
    if not isinstance(data, Mapping):
        raise _mismatch(cls, data, path, source)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for name in data:
        if name not in fields:
            valid = ", ".join(fields) or "(none)"
            problem = f"unknown key; valid keys: {valid}"
            raise ConfigError(problem, key=_join(path, str(name)), source=source)
    kwargs = {}
    for name, field in fields.items():
        key = _join(path, name)
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], key, source)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError("missing required key", key=key, source=source)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:  # a __post_init__ check of the schema
        raise ConfigError(str(err), key=path, source=source) from err


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _convert(tp: Any, value: Any, key: str, source: str) -> Any:
    """Checks `value` against type hint `tp`; returns it in its stored form."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        return _convert_union(tp, value, key, source)
    if origin is Literal:
        if any(type(value) is type(a) and value == a for a in args):
            return value
        raise _mismatch(tp, value, key, source)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, source=source, path=key)
    if tp in _SEQUENCES or origin in _SEQUENCES:
        return _convert_sequence(tp, value, key, source)
    if tp in _MAPPINGS or origin in _MAPPINGS:
        if not isinstance(value, Mapping):
            raise _mismatch(tp, value, key, source)
        key_tp, value_tp = args or (Any, Any)
        return {
            _convert(key_tp, k, f"{key} (key {k!r})", source):
            _convert(value_tp, v, _join(key, str(k)), source)
            for k, v in value.items()
        }
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool):
        raise _mismatch(tp, value, key, source)
    if not isinstance(tp, type):
        raise TypeError(f"config key {key!r}: unsupported type hint {tp!r}")
    if isinstance(value, tp):
        return value
    raise _mismatch(tp, value, key, source)


def _convert_union(tp: Any, value: Any, key: str, source: str) -> Any:
    arms = [a for a in get_args(tp) if a is not type(None)]
    if value is None and len(arms) < len(get_args(tp)):
        return None
    for arm in arms:
        try:
            return _convert(arm, value, key, source)
        except ConfigError as err:
            if len(arms) == 1 and err.key != key:  # a nested problem: report it as is
                raise
    raise _mismatch(tp, value, key, source)


def _convert_sequence(tp: Any, value: Any, key: str, source: str) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise _mismatch(tp, value, key, source)
    args = get_args(tp)
    if get_origin(tp) is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            problem = f"expected {_type_name(tp)} ({len(args)} items), got {describe_value(value)}"
            raise ConfigError(problem, key=key, source=source)
        item_types = args
    else:
        item_types = (args[0] if args else Any,) * len(value)
    pairs = enumerate(zip(item_types, value))
    return tuple(_convert(t, v, f"{key}[{i}]", source) for i, (t, v) in pairs)


def to_dict(config: Any) -> dict[str, Any]:
    """Plain, `yaml.safe_dump`-able data of a config: the inverse of `from_dict`.

    Args:
      config: a dataclass instance.

    Returns:
      Nested dicts and lists, with `from_dict(type(config), to_dict(config)) == config`
      for any config that `from_dict` built.
    """
    fields = (f for f in dataclasses.fields(config) if f.init)
    return {f.name: to_plain(getattr(config, f.name)) for f in fields}


def to_plain(value: Any) -> Any:
    """Plain data of one config value: dataclasses and mappings as dicts, sequences as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value
