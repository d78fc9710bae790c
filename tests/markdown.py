"""Reads GitHub markdown tables back into cells, so tests compare values, not padding."""

from __future__ import annotations


def table_rows(text: str) -> list[list[str]]:
    """The rows (header first, separator dropped) of every markdown table line in `text`."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if all(set(cell) <= set("-: ") for cell in cells):
            continue
        rows.append(cells)
    return rows
