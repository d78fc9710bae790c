"""`PyTree`: the type alias every module uses for a nested structure of arrays.

JAX has no single static type for pytrees (any nesting of lists, tuples, dicts and
registered classes with arrays at the leaves), so the alias documents intent only.
"""

from __future__ import annotations

from typing import Any

PyTree = Any
