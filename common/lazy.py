"""Lazy package exports (PEP 562): `package.name` imports its module on first use.

Packages of this project re-export their public names, but a config loader only
needs the light modules (options dataclasses) and must not import JAX. With lazy
exports, `import tasks.options` runs `tasks/__init__.py` without importing the
JAX-backed modules behind `tasks.get_family`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list]]:
    """`(__getattr__, __dir__)` for a package whose names live in submodules.

    Args:
      package: the package's `__name__`.
      exports: public name -> the submodule (relative to `package`) that defines it.

    Returns:
      The module-level `__getattr__` and `__dir__` to assign in the package's `__init__`.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    def __dir__() -> list:
        return sorted(exports)

    return __getattr__, __dir__
