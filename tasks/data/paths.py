"""Where data sets live on disk, and the error raised when a data file is missing or bad."""

from __future__ import annotations

import os
import pathlib

from common.errors import UserError

ENV_VAR = "META_OPT_DATA"
CACHE_NAME = "geodesic-meta-opt"


class DataFileError(UserError):
    """A data file is missing or malformed.

    The message names the offending file and says how to obtain a good copy, so
    the command line can show it as is (`meta-opt` exits with status 2).
    """


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """Returns the folder that holds the data sets.

    The precedence lets a config pin a folder, a machine set a default once
    through the environment, and everyone else share a per-user cache.

    Args:
      data_dir: an explicit folder; wins when given (`~` is expanded).

    Returns:
      `data_dir` if given, else `$META_OPT_DATA` if set and non-empty, else
      `$XDG_CACHE_HOME/geodesic-meta-opt` (`~/.cache/geodesic-meta-opt` when
      `XDG_CACHE_HOME` is unset). The folder is not created.
    """
    if data_dir is not None and str(data_dir) != "":
        return pathlib.Path(data_dir).expanduser()
    from_env = os.environ.get(ENV_VAR, "")
    if from_env:
        return pathlib.Path(from_env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "")
    base = pathlib.Path(cache).expanduser() if cache else pathlib.Path.home() / ".cache"
    return base / CACHE_NAME


def how_to_obtain(dataset: str, data_dir: pathlib.Path) -> str:
    """Returns the remedy sentence appended to a missing-file error.

    Args:
      dataset: "mnist" or "cifar10", as the `meta-opt data download` command names it.
      data_dir: the data folder that was searched.

    Returns:
      A sentence naming the download command, the manual alternative and the
      environment variable.
    """
    return (
        f"To obtain it, run `meta-opt data download {dataset} --data-dir {data_dir}`, "
        f"or put the standard {dataset} files there by hand, or set {ENV_VAR} "
        f"(or the task option data_dir) to a folder that holds them."
    )
