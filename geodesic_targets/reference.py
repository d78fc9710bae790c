"""Reference values for energy sweeps: Freeman & Bruna's published figures.

`../shared/reference/freeman_bruna_figures.txt` holds values extracted from
Freeman & Bruna's published figures: a header line naming the figure (e.g.
`normlengthcubics.pdf ...`) followed by a line `M1 (x,y) (x,y) ...`.
"""

from __future__ import annotations

import pathlib
import re

_POINT = re.compile(r"\(([-+0-9.eE]+),([-+0-9.eE]+)\)")


def load_reference(path: str | pathlib.Path) -> dict[str, list[tuple[float, float]]]:
    """Figure name (e.g. "normlengthcubics") -> its (x, y) points, from the reference file."""
    figures, name = {}, None
    for line in pathlib.Path(path).read_text().splitlines():
        if ".pdf" in line:
            name = line.split(".pdf")[0].strip()
        elif line.startswith("M1") and name:
            figures[name] = [(float(x), float(y)) for x, y in _POINT.findall(line)]
    return figures
