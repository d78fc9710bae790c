"""Atomic file writes: a reader sees the old file or the whole new one, never a partial write.

Every file the project writes that a later run reads (configs, paths, target sets,
checkpoints, downloads) goes through here: the bytes go to a temporary file beside
the destination, are flushed to disk, and `os.replace` moves them into place; if
anything fails first, the temporary file is removed and the destination is untouched.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
from collections.abc import Iterator
from typing import IO


def fsync_path(path: str | os.PathLike) -> None:
    """Flushes a file's or folder's entry to disk (a folder after a rename inside it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_sibling(path: str | os.PathLike, suffix: str = ".tmp") -> pathlib.Path:
    """A fresh hidden name beside `path` (`.<name>.<random><suffix>`), for a write to rename later."""
    path = pathlib.Path(path)
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", encoding: str | None = None
) -> Iterator[IO]:
    """Opens a temporary file beside `path`; on a clean exit it replaces `path` atomically.

    Args:
      path: the destination; missing parent folders are created.
      mode: "wb" (bytes) or "w" (text).
      encoding: the text encoding for mode "w" (default utf-8).

    Yields:
      The open temporary file. Raising inside the block leaves `path` as it was.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes whole files: mode 'w' or 'wb', got {mode!r}")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        text = {"encoding": encoding or "utf-8"} if mode == "w" else {}
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Writes `text` (utf-8) to `path` atomically."""
    with atomic_write(path, "w") as f:
        f.write(text)
