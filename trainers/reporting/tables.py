"""Every table the project prints or writes, through tabulate.

`markdown_table` for report files (GitHub markdown), `text_table` for the terminal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from tabulate import tabulate


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table (cells as given: format numbers before)."""
    return tabulate(
        [list(map(str, row)) for row in rows],
        headers=list(columns),
        tablefmt="github",
        disable_numparse=True,
    )


def text_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned table for the terminal."""
    return tabulate(
        [list(map(str, row)) for row in rows],
        headers=list(columns),
        tablefmt="simple",
        disable_numparse=True,
    )


def format_number(value: float, digits: int) -> str:
    """`value` with `digits` decimals; "–" for nan (a value that does not exist)."""
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def format_mean_se(value: tuple[float, float], digits: int = 3) -> str:
    """'0.0564 ± 0.0030' (`digits` significant digits of the mean); '—' for nan, '∞' for inf."""
    mean, se = value
    if not math.isfinite(mean):
        return "—" if math.isnan(mean) else "∞"
    scale = max(0, digits - 1 - int(math.floor(math.log10(abs(mean))))) if mean else digits
    if math.isnan(se):
        return f"{mean:.{scale}f}"
    return f"{mean:.{scale}f} ± {se:.{scale}f}"


SWEEP_COLUMNS = (
    "level",
    "connected / tried",
    "unreached",
    "normalized length",
    "beads",
    "test error %",
    "seconds",
    "before shortening",
    "distance",
)
ALIGNED_COLUMN = "distance before alignment"
CONVERGED_COLUMN = "shortening converged / shortened"


def sweep_table(results: Sequence[Any]) -> str:
    """An energy sweep (`geodesic_targets.LevelResult`s) as a markdown table.

    With shortening, a column counts the connected pairs whose shortening converged; with
    alignment, one gives the distance before it.
    """
    rows = [
        [
            f"{r.level:g}",
            f"{r.pairs_connected} / {r.pairs_tried}",
            r.pairs_unreached,
            f"{format_number(r.normalized_length_mean, 3)} ± {format_number(r.normalized_length_se, 3)}",
            f"{format_number(r.beads_mean, 1)} ± {format_number(r.beads_se, 1)}",
            format_number(r.test_error_mean, 2),
            f"{r.seconds:.1f}",
            f"{format_number(r.unshortened_length_mean, 3)} ± {format_number(r.unshortened_length_se, 3)}",
            f"{format_number(r.distance_mean, 3)} ± {format_number(r.distance_se, 3)}",
        ]
        for r in results
    ]
    columns = list(SWEEP_COLUMNS)
    if any(r.pairs_shortened for r in results):
        columns.append(CONVERGED_COLUMN)
        rows = [
            row + [f"{r.pairs_converged} / {r.pairs_shortened}"] for row, r in zip(rows, results)
        ]
    if any(np.isfinite(r.unaligned_distance_mean) for r in results):
        columns.append(ALIGNED_COLUMN)
        rows = [
            row + [format_number(r.unaligned_distance_mean, 3)] for row, r in zip(rows, results)
        ]
    return markdown_table(columns, rows) + "\n"
