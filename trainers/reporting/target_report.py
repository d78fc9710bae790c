"""What a target set looks like before any meta-training: a summary, a table per pair, a plot.

The question it answers: do these targets differ from chords (and from the teacher)?
A path with normalized length 1 and no distance from the chord is chord imitation.
It also says whether each shortening converged and how far any target point lies
above the level it must keep ((loss - level) / level; <= 0 where every one keeps it).
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from trainers.reporting.plots import plot_target_geometry
from trainers.reporting.tables import format_number, markdown_table

BENT = 1.05  # a path at least this much longer than its chord counts as bent


def _stat(values: np.ndarray, reduce) -> float:
    values = np.asarray(values, np.float64)
    return float(reduce(values[np.isfinite(values)])) if np.isfinite(values).any() else float("nan")


def target_summary(targets) -> dict[str, Any]:
    """Counts and means of a `TargetSet`'s geometry (plain data for targets.json)."""
    lengths = np.asarray(targets.normalized_lengths, np.float64)
    return {
        "schedule": targets.schedule,
        "timing": targets.timing,
        "pairs_certified": int(len(lengths)),
        "pairs_uncertified": int(targets.num_uncertified),
        "pairs_not_descending": int(targets.num_not_descending),
        "normalized_length_mean": _stat(lengths, np.mean),
        "normalized_length_max": _stat(lengths, np.max),
        "unshortened_length_mean": _stat(targets.unshortened_lengths, np.mean),
        "unshortened_length_max": _stat(targets.unshortened_lengths, np.max),
        f"fraction_of_pairs_at_least_{BENT}": float(np.mean(lengths >= BENT))
        if len(lengths)
        else float("nan"),
        "chord_deviation_mean": _stat(targets.chord_deviations, np.mean),
        "chord_deviation_max": _stat(targets.chord_deviations, np.max),
        "chord_break_fraction_mean": _stat(targets.chord_break_fractions, np.mean),
        "pairs_where_the_chord_keeps_pace_unevenly": int(np.nansum(targets.chord_keeps_pace)),
        "beads_mean": _stat(targets.num_beads, np.mean),
        "pairs_shortened": int(np.isfinite(targets.converged).sum()),
        "pairs_converged": int(np.nansum(targets.converged)),
        "shortening_rounds_max": _stat(targets.shortening_rounds, np.max),
        "convergence_criterion_max": _stat(targets.convergence_criteria, np.max),
        "largest_target_excess": targets.largest_target_excess(),
    }


PAIR_COLUMNS = (
    "pair",
    "start step",
    "level F(θ_t)",
    "end loss",
    "normalized length",
    "before shortening",
    "distance from chord / chord",
    "chord above teacher (of steps)",
    "points",
    "converged (rounds)",
    "largest target excess",
    "chord keeps pace unevenly",
)


def _convergence(targets, j: int) -> str:
    if not np.isfinite(targets.converged[j]):
        return "not shortened"
    return f"{'yes' if targets.converged[j] else 'no'} ({int(targets.shortening_rounds[j])})"


def _excess(targets, j: int) -> str:
    excess = targets.target_excesses()[j]
    return f"{np.max(excess):.2g}" if np.isfinite(excess).any() else "–"


def pair_rows(targets) -> list[list[str]]:
    """One row per certified pair, in `PAIR_COLUMNS` order."""
    return [
        [
            str(j),
            str(int(targets.start_steps[j])),
            f"{targets.levels[j]:.4g}",
            f"{targets.end_losses[j]:.4g}",
            format_number(targets.normalized_lengths[j], 3),
            format_number(targets.unshortened_lengths[j], 3),
            format_number(targets.chord_deviations[j], 3),
            format_number(targets.chord_break_fractions[j], 2),
            str(int(targets.num_beads[j])) if np.isfinite(targets.num_beads[j]) else "–",
            _convergence(targets, j),
            _excess(targets, j),
            {1.0: "yes", 0.0: "no"}.get(float(targets.chord_keeps_pace[j]), "–"),
        ]
        for j in range(len(targets.levels))
    ]


def target_markdown(targets, title: str) -> str:
    """targets.md: the summary as a two-column table, then the table of pairs."""
    summary = target_summary(targets)
    small = (
        "convergence_criterion_max",
        "largest_target_excess",
    )  # values near 0: significant digits
    rows = [
        [
            key.replace("_", " "),
            value
            if isinstance(value, str)
            else str(value)
            if isinstance(value, int)
            else f"{value:.2g}"
            if key in small
            else format_number(value, 3),
        ]
        for key, value in summary.items()
    ]
    return "\n".join(
        [
            f"# {title}",
            "",
            markdown_table(["measure", "value"], rows),
            "",
            "## Pairs",
            "",
            markdown_table(PAIR_COLUMNS, pair_rows(targets)),
            "",
        ]
    )


def plot_targets(targets, path: str | pathlib.Path, title: str):
    """target_geometry.png: length before and after shortening, distance from the chord, chord breaks."""
    return plot_target_geometry(
        np.asarray(targets.levels),
        np.asarray(targets.normalized_lengths),
        np.asarray(targets.unshortened_lengths),
        np.asarray(targets.chord_deviations),
        np.asarray(targets.chord_break_fractions),
        path,
        title,
    )
