"""Character-level text that ships with Python: a fixed list of standard-library source files.

Language-model tasks need a corpus that is on every machine without a download; the
interpreter's own library sources are. The files are read from
`sysconfig.get_paths()["stdlib"]` in the fixed order of `MODULES`, joined with newlines and
mapped to tokens: ASCII characters are their code points (0..127) and every other character is
`OTHER_TOKEN`, so `VOCAB_SIZE` is 129. The text (and so every loss on it) differs between Python
versions; tests must not hard-code numbers that depend on it.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sysconfig

import numpy as np

from tasks.data.paths import DataFileError

# Sorted, small, long-lived pure-Python modules (about 195 KB on CPython 3.11).
MODULES = (
    "bisect.py",
    "calendar.py",
    "fractions.py",
    "functools.py",
    "heapq.py",
    "random.py",
    "shlex.py",
    "string.py",
    "textwrap.py",
)
MAX_CHARS = 300_000  # the corpus is cut here, should a future Python's modules grow
NUM_ASCII = 128
OTHER_TOKEN = NUM_ASCII  # every non-ASCII character
VOCAB_SIZE = NUM_ASCII + 1


@dataclasses.dataclass(frozen=True)
class TextSplits:
    """A token sequence cut by position: `train` is the beginning, `test` the rest.

    Attributes:
      train: int32 tokens of the first part of the corpus.
      test: int32 tokens of the last part; no position is in both.
      description: where the text came from (shown in logs and reports).
    """

    train: np.ndarray
    test: np.ndarray
    description: str = ""


def stdlib_dir() -> pathlib.Path:
    """The folder of this interpreter's standard library sources."""
    return pathlib.Path(sysconfig.get_paths()["stdlib"])


def read_corpus(directory: pathlib.Path | None = None) -> str:
    """The files `MODULES` of `directory` (default: `stdlib_dir()`) joined by newlines.

    Raises:
      DataFileError: a module's source file is missing (some minimal Python installs ship
        only compiled files).
    """
    directory = stdlib_dir() if directory is None else pathlib.Path(directory)
    parts = []
    for name in MODULES:
        path = directory / name
        if not path.is_file():
            raise DataFileError(
                f"{path}: standard-library source file not found; the character-level "
                "language-model tasks read Python's own sources. Install a Python with its "
                ".py library files (not only .pyc) or run another task."
            )
        parts.append(path.read_text(encoding="utf-8"))
    return "\n".join(parts)[:MAX_CHARS]


def encode(text: str) -> np.ndarray:
    """int32 tokens of `text`: ASCII code points, `OTHER_TOKEN` for anything else."""
    codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    return np.where(codes < NUM_ASCII, codes, OTHER_TOKEN).astype(np.int32)


def decode(tokens: np.ndarray) -> str:
    """The text of `tokens`, with U+FFFD (the replacement character) for `OTHER_TOKEN`."""
    return "".join("\ufffd" if t == OTHER_TOKEN else chr(t) for t in np.asarray(tokens).tolist())


def load_stdlib_text_splits(
    test_fraction: float = 0.1, directory: pathlib.Path | None = None
) -> TextSplits:
    """The corpus as tokens, its last `test_fraction` of characters held out as `test`.

    Raises:
      ValueError: `test_fraction` outside (0, 1).
      DataFileError: a source file is missing (`read_corpus`).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}.")
    tokens = encode(read_corpus(directory))
    cut = int(round(len(tokens) * (1.0 - test_fraction)))
    description = (
        f"Python {sysconfig.get_python_version()} standard-library sources "
        f"({', '.join(MODULES)}): {cut} train / {len(tokens) - cut} test characters, "
        f"vocabulary {VOCAB_SIZE} (ASCII + other)"
    )
    return TextSplits(tokens[:cut], tokens[cut:], description)
