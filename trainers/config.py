"""Config files: YAML and `a.b=value` overrides into frozen config dataclasses.

Every command reads its config the same way: `load_config(Schema, path,
overrides)` reads the YAML file, applies the command-line overrides and checks
the result against the schema (see `trainers.config_schema`); `save_config`
records it in a run folder. Errors are `ConfigError`s naming the file, the
dotted key and, where one set it, the override.

PyYAML implements YAML 1.1, which reads `1e-3` as a string. Strings that look
like numbers in scientific notation are read as floats, in files and overrides
alike, so a `str` field cannot hold such a value.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any, Mapping, Sequence, TypeVar

import yaml

from trainers.config_schema import ConfigError, describe_value, from_dict, to_dict, to_plain

__all__ = [
    "ConfigError", "apply_overrides", "attribute_override", "from_dict", "load_config",
    "parse_override", "replace_path", "save_config", "to_dict",
]

T = TypeVar("T")
_SCI_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _floats_from_sci(value: Any) -> Any:
    """Reads YAML-1.1 strings like "1e-3" as floats, recursively."""
    if isinstance(value, str) and _SCI_FLOAT.fullmatch(value):
        return float(value)
    if isinstance(value, dict):
        return {k: _floats_from_sci(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats_from_sci(v) for v in value]
    return value


def _read_yaml(text: str, **where: str) -> Any:
    """`yaml.safe_load` with YAML-1.2 floats; syntax errors become ConfigErrors at `where`."""
    try:
        return _floats_from_sci(yaml.safe_load(text))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"invalid YAML{at}: {problem}", **where) from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """Splits a command-line override "a.b.c=value" into its key path and value.

    Args:
      text: the override; the value is YAML (`3` int, `1e-3` float, `[32, 32]`
        list, `true` bool, `null` None, `abc` str).

    Returns:
      The key path as a list of names, and the parsed value.

    Raises:
      ConfigError: naming the override, if it has no `=`, an empty key or an
        empty path component, or a value that is not valid YAML.
    """
    key, sep, raw = text.partition("=")
    parts = [p.strip() for p in key.split(".")]
    if not sep or not all(parts):
        raise ConfigError("expected KEY.PATH=VALUE with non-empty names", override=text)
    return parts, _read_yaml(raw, override=text)


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Sets each override in a copy of nested config data, later ones winning.

    Missing intermediate mappings are created; whether the keys exist in the
    schema is checked later by `from_dict` (see `load_config`).

    Args:
      data: nested plain data (left unchanged).
      overrides: strings "a.b.c=value", see `parse_override`.

    Returns:
      A new nested dict.

    Raises:
      ConfigError: naming the override, if it is malformed or sets a key below a
        value that is not a mapping (e.g. `seed.x=1` when `seed` is 3).
    """
    result = _copy_mappings(data)
    for text in overrides:
        parts, value = parse_override(text)
        _set_path(result, parts, value, override=text)
    return result


def _copy_mappings(data: Mapping[str, Any]) -> dict[str, Any]:
    """Copies the nested mappings (as dicts) so that setting keys leaves `data` unchanged."""
    return {k: _copy_mappings(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def _set_path(data: dict[str, Any], parts: Sequence[str], value: Any, override: str) -> None:
    """Sets `value` at key path `parts` of `data` in place, creating missing dicts."""
    node = data
    for i, name in enumerate(parts[:-1]):
        child = node.setdefault(name, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set a key below {describe_value(child)}: not a mapping",
                              key=".".join(parts[: i + 1]), override=override)
        node = child
    node[parts[-1]] = value


def attribute_override(err: ConfigError, overrides: Sequence[str]) -> ConfigError:
    """Returns `err` naming the last override that set its key (or a parent or child of it).

    Args:
      err: an error from `from_dict` on data that `overrides` were applied to.
      overrides: the applied overrides, in order.

    Returns:
      A copy of `err` with `override` filled in, or `err` itself if no override
      touched its key.
    """
    if err.override:
        return err
    for text in reversed(overrides):
        set_key = ".".join(p.strip() for p in text.partition("=")[0].split("."))
        below = err.key.startswith((set_key + ".", set_key + "[", set_key + " "))
        if err.key == set_key or below or set_key.startswith(err.key + "."):
            return ConfigError(err.problem, key=err.key, source=err.source, override=text)
    return err


def load_config(cls: type[T], path: str | os.PathLike, overrides: Sequence[str] = ()) -> T:
    """Reads a YAML config file into a `cls` instance, after applying overrides.

    Args:
      cls: the config dataclass.
      path: the YAML file; an empty file means all defaults.
      overrides: "a.b=value" strings applied on top of the file, in order.

    Returns:
      The validated config.

    Raises:
      ConfigError: naming the file (and line, for YAML syntax errors), the key
        and the override at fault; also if the file is missing or its top level
        is not a mapping.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        problem = f"cannot read config file ({err.strerror or err})"
        raise ConfigError(problem, source=source) from None
    data = _read_yaml(text, source=source)
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        problem = f"the top level must be a mapping of keys, got {describe_value(data)}"
        raise ConfigError(problem, source=source)
    try:
        return from_dict(cls, apply_overrides(data, overrides), source=source)
    except ConfigError as err:
        err = attribute_override(err, overrides)
        raise ConfigError(err.problem, key=err.key, source=source, override=err.override) from None


def save_config(config: Any, path: str | os.PathLike) -> None:
    """Writes a config as plain YAML, atomically, so a run folder records it exactly.

    The YAML goes to a temporary file in the same folder, then `os.replace`
    moves it into place: readers see the old file or the whole new one, never
    a partial write. `load_config(type(config), path)` gives an equal config.

    Args:
      config: a config dataclass instance; it is validated first.
      path: the file to write; missing parent folders are created.

    Raises:
      ConfigError: if the config does not pass `from_dict` (nothing is written).
    """
    path = Path(path)
    data = to_dict(config)
    from_dict(type(config), data, source=f"<config to save at {path}>")
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def replace_path(config: T, dotted: str, value: Any) -> T:
    """Returns a copy of a nested frozen config with the field at `dotted` set to `value`.

    Args:
      config: a config dataclass instance (left unchanged).
      dotted: the key path, e.g. "task.options.batch_size".
      value: the new value (plain data or a config dataclass).

    Returns:
      The new config, validated like a loaded one.

    Raises:
      ConfigError: naming the key if it does not exist or `value` has the wrong type.
    """
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
