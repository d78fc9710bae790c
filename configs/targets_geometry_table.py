"""The target-geometry table of GEODESICS.md from the cells that configs/targets_geometry.sh writes.

Usage: .venv/bin/python configs/targets_geometry_table.py [FOLDER ...]   (default runs/targets_geometry)
Reads every <FOLDER>/<cell>/targets.json (and the wall time in stdout.txt); a cell without a set
(no pair certified) is listed with its error line; a cell still running is left out. Prints
one markdown row per cell.
"""

from __future__ import annotations

import json
import pathlib
import re
import sys

COLUMNS = (
    "cell",
    "pairs cert. / uncert. / not desc.",
    "converged / shortened (max rounds)",
    "length after (mean)",
    "after (max)",
    "converged pairs: length mean / max (≥ 1.05)",
    "before (mean)",
    "fraction ≥ 1.05 of certified (count / all)",
    "chord deviation mean",
    "chord-break fraction mean",
    "chord keeps pace unevenly",
    "largest target excess",
    "wall s",
)


def wall_seconds(stdout: pathlib.Path) -> str:
    match = (
        re.search(r"^real\s+(\d+)m([\d.]+)s", stdout.read_text(encoding="utf-8"), re.M)
        if stdout.exists()
        else None
    )
    return f"{60 * int(match[1]) + float(match[2]):.0f}" if match else "–"


def converged_lengths(summary: dict) -> str:
    """Mean and max normalized length over the pairs whose shortening converged, and how many are >= 1.05."""
    lengths = [
        float(p["normalized length"])
        for p in summary["pairs"]
        if str(p.get("converged (rounds)", "")).startswith("yes")
    ]
    if not lengths:
        return "–"
    return f"{sum(lengths) / len(lengths):.3f} / {max(lengths):.3f} ({sum(x >= 1.05 for x in lengths)}/{len(lengths)})"


def row(cell: pathlib.Path) -> list[str]:
    summary = json.loads((cell / "targets.json").read_text(encoding="utf-8"))
    certified, total = (
        summary["pairs_certified"],
        (
            summary["pairs_certified"]
            + summary["pairs_uncertified"]
            + summary["pairs_not_descending"]
        ),
    )
    bent = round(summary["fraction_of_pairs_at_least_1.05"] * certified)
    number = lambda key, digits=3: (
        f"{summary[key]:.{digits}f}" if summary.get(key) is not None else "–"
    )
    rounds = summary.get("shortening_rounds_max")
    converged = (
        f"{summary['pairs_converged']} / {summary['pairs_shortened']} ({rounds:.0f})"
        if summary.get("pairs_shortened")
        else "not shortened"
    )
    return [
        cell.name,
        f"{certified} / {summary['pairs_uncertified']} / {summary['pairs_not_descending']}",
        converged,
        number("normalized_length_mean"),
        number("normalized_length_max"),
        converged_lengths(summary),
        number("unshortened_length_mean"),
        f"{summary['fraction_of_pairs_at_least_1.05']:.2f} ({bent}/{total})",
        number("chord_deviation_mean"),
        number("chord_break_fraction_mean", 2),
        f"{summary.get('pairs_where_the_chord_keeps_pace_unevenly', '–')} / {certified}",
        f"{summary['largest_target_excess']:.1g}" if "largest_target_excess" in summary else "–",
        wall_seconds(cell / "stdout.txt"),
    ]


def main(folders: list[str]) -> None:
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for folder in folders or ["runs/targets_geometry"]:
        for cell in sorted(pathlib.Path(folder).iterdir()):
            if (cell / "targets.json").exists():
                print("| " + " | ".join(row(cell)) + " |")
            elif (
                wall_seconds(cell / "stdout.txt") != "–"
            ):  # finished without a set (else still running)
                lines = [
                    line
                    for line in (cell / "stdout.txt").read_text(encoding="utf-8").splitlines()
                    if "error" in line.lower()
                ]
                print(
                    f"| {cell.name} | no set written: {(lines or ['?'])[-1][:120]} |"
                    + " |" * (len(COLUMNS) - 3)
                    + f" {wall_seconds(cell / 'stdout.txt')} |"
                )


if __name__ == "__main__":
    main(sys.argv[1:])
