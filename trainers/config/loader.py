"""Config files: YAML (with `base:` composition) and `a.b=value` overrides into frozen dataclasses.

Every command reads its config the same way: `load_config(Schema, path, overrides)`
reads the YAML file (deep-merged over the files its `base:` key names, relative
to itself: mappings merge, lists and values replace), applies the command-line
overrides and builds the schema (`trainers.config.typed`); `save_config` records
it in a run folder. Errors are `ConfigError`s naming the file, the dotted key
and, where one set it, the override.

PyYAML implements YAML 1.1, which reads `1e-3` as a string. Strings that look
like numbers in scientific notation are read as floats, in files and overrides
alike, so a `str` field cannot hold such a value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from common.atomic import write_text
from trainers.config.typed import ConfigError, describe_value, from_dict, to_dict, to_plain

__all__ = [
    "ConfigError",
    "apply_overrides",
    "attribute_override",
    "from_dict",
    "load_config",
    "parse_override",
    "replace_path",
    "save_config",
    "to_dict",
]

T = TypeVar("T")
_SCI_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _read_yaml(text: str, **where: str) -> Any:
    """`yaml.safe_load`, reading "1e-3"-like strings as floats; syntax errors name `where`."""

    def sci(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: sci(x) for k, x in v.items()}
        if isinstance(v, list):
            return [sci(x) for x in v]
        return float(v) if isinstance(v, str) and _SCI_FLOAT.fullmatch(v) else v

    try:
        return sci(yaml.safe_load(text))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"invalid YAML{at}: {getattr(err, 'problem', None) or err}", **where
        ) from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """Splits an override "a.b.c=value" into its key path and (YAML) value."""
    key, sep, raw = text.partition("=")
    parts = [p.strip() for p in key.split(".")]
    if not sep or not all(parts):
        raise ConfigError("expected KEY.PATH=VALUE with non-empty names", override=text)
    return parts, _read_yaml(raw, override=text)


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Sets each override in a copy of nested config data, later ones winning."""
    result = _merge({}, data)
    for text in overrides:
        _set_path(result, *parse_override(text), override=text)
    return result


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: `over` deep-merged onto `base` (mappings merge, anything else replaces)."""
    result = {k: _merge({}, v) if isinstance(v, Mapping) else v for k, v in base.items()}
    for k, v in over.items():
        old = result.get(k) if isinstance(result.get(k), Mapping) else {}
        result[k] = _merge(old, v) if isinstance(v, Mapping) else v
    return result


def _set_path(data: dict[str, Any], parts: Sequence[str], value: Any, override: str) -> None:
    for i, name in enumerate(parts[:-1]):
        data = data.setdefault(name, {})
        if not isinstance(data, dict):
            raise ConfigError(
                f"cannot set a key below {describe_value(data)}: not a mapping",
                key=".".join(parts[: i + 1]),
                override=override,
            )
    data[parts[-1]] = value


def attribute_override(err: ConfigError, overrides: Sequence[str]) -> ConfigError:
    """Returns `err` naming the last override that set its key (or a parent or child of it)."""
    for text in reversed(overrides if not err.override else ()):
        set_key = ".".join(p.strip() for p in text.partition("=")[0].split("."))
        below = err.key.startswith((set_key + ".", set_key + "[", set_key + " "))
        if err.key == set_key or below or set_key.startswith(err.key + "."):
            return ConfigError(err.problem, key=err.key, source=err.source, override=text)
    return err


def _read_composed(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The file's mapping deep-merged over its `base:` chain; errors name the file at fault."""
    try:
        data = _read_yaml(path.read_text(encoding="utf-8"), source=str(path))
    except OSError as err:
        raise ConfigError(
            f"cannot read config file ({err.strerror or err})", source=str(path)
        ) from None
    if not isinstance(data, Mapping | None):
        problem = f"the top level must be a mapping of keys, got {describe_value(data)}"
        raise ConfigError(problem, source=str(path))
    data = dict(data or {})
    base, chain = data.pop("base", None), (*chain, path.resolve())
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ConfigError(
            f"expected a file path, got {describe_value(base)}", key="base", source=str(path)
        )
    if (path.parent / base).resolve() in chain:
        files = " -> ".join(str(p) for p in (*chain, (path.parent / base).resolve()))
        raise ConfigError(f"base files form a cycle: {files}", key="base", source=str(path))
    return _merge(_read_composed(path.parent / base, chain), data)


def load_config(cls: type[T], path: str | os.PathLike, overrides: Sequence[str] = ()) -> T:
    """Reads a YAML config file (over its `base:` files) into a `cls`, after applying overrides.

    Raises ConfigError naming this file, the key and the override at fault; a problem in a base
    file says "in base file <path>" (key `base` unless it has its own).
    """
    source = str(path)
    try:
        data = _read_composed(Path(path))
    except ConfigError as err:
        if err.source == source:
            raise
        problem = f"in base file {err.source}: {err.problem}"
        raise ConfigError(problem, key=err.key or "base", source=source) from None
    try:
        return from_dict(cls, apply_overrides(data, overrides), source=source)
    except ConfigError as err:
        err = attribute_override(err, overrides)
        raise ConfigError(err.problem, key=err.key, source=source, override=err.override) from None


def save_config(config: Any, path: str | os.PathLike) -> None:
    """Writes a validated config as plain YAML, atomically (`common.atomic`)."""
    path = Path(path)
    data = to_dict(config)
    from_dict(type(config), data, source=f"<config to save at {path}>")
    write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def replace_path(config: T, dotted: str, value: Any) -> T:
    """Returns a validated copy of a nested frozen config with the field at `dotted` set."""
    label = f"{dotted}={to_plain(value)!r}"
    parts = [p.strip() for p in dotted.split(".")]
    if not all(parts):
        raise ConfigError("expected a dotted key with non-empty names", override=label)
    data = to_dict(config)
    _set_path(data, parts, to_plain(value), override=label)
    try:
        return from_dict(type(config), data, source=f"<replace_path on {type(config).__name__}>")
    except ConfigError as err:
        raise attribute_override(err, [label]) from None
