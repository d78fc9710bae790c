"""The ablation report's comparison tables: one row per paired comparison, and the words.

`trainers.reporting.ablation_statistics.comparisons` makes the numbers (paired t-tests,
Holm within families, TOST at a margin, the detectable effect); this module lays out
the primary section, the other comparisons and the negative control's noise floor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from trainers.reporting.tables import format_mean_se, markdown_table


def fmt(value, digits=3) -> str:
    if isinstance(value, tuple):
        return format_mean_se(value, digits)
    if isinstance(value, float):
        return (
            "—" if math.isnan(value) else ("never" if math.isinf(value) else f"{value:.{digits}g}")
        )
    return str(value)


COMPARISON_COLUMNS = [
    "comparison",
    "metric",
    "mean a − b",
    "95% interval",
    "relative to b",
    "p (Holm)",
    "equivalence p (Holm)",
    "detectable at 80% power",
    "verdict",
]


def _p(value: float) -> str:
    return "—" if math.isnan(value) else ("< 1e-4" if value < 1e-4 else f"{value:.3g}")


def comparison_row(c: Mapping) -> list[str]:
    """One comparison as a table row (COMPARISON_COLUMNS)."""
    return [
        f"{c['a']} vs {c['b']}",
        c["metric"].replace("_", " "),
        f"{c['difference']:+.4f}",
        f"[{c['lower']:+.4f}, {c['upper']:+.4f}]",
        f"{100 * c['relative']:+.1f}%",
        f"{_p(c['p_adjusted'])} (raw {_p(c['p'])}, of {c['family_size']})",
        "—"
        if math.isnan(c["margin"])
        else f"{_p(c['p_equivalence_adjusted'])} (± {c['margin']:.3g})",
        fmt(c["detectable"]),
        c["verdict"],
    ]


def statistics_sentence(margin: float) -> str:
    """How the comparison tables' verdicts are made, in words."""
    equivalence = (
        f"equivalent where two one-sided tests at ± {margin:.0%} of b's mean both reject "
        "(Holm-adjusted); "
        if margin
        else "no equivalence margin is set, so no pair can be called equivalent; "
    )
    return (
        "a − b per meta-seed (the same seed of both arms), a paired t-test over the meta-seeds "
        "(n − 1 degrees of freedom) with Holm's correction within each family and metric (the "
        "'of N' is the family's size): wins or loses where the adjusted p is below 0.05, "
        + equivalence
        + "inconclusive otherwise (not the same as equal). The 95% interval is unadjusted. "
        "Detectable: the smallest true difference the test finds with 80% power at 0.05 / N, "
        "from the observed spread."
    )


def primary_section(rows: Sequence[list[str]], margin: float) -> list[str]:
    if not rows:
        return []
    return [
        "## Primary question",
        "",
        "The comparisons declared in the config before the run (`ablation.primary`), "
        "Holm-adjusted among themselves. " + statistics_sentence(margin),
        "",
        markdown_table(COMPARISON_COLUMNS, rows),
        "",
    ]


def control_section(rows: Sequence[list[str]], pair: str | None) -> list[str]:
    if pair is None:
        return []
    if not rows:
        return [f"Negative control `{pair}`: not run (an arm of it is missing).", ""]
    return [
        "## Noise floor (negative control)",
        "",
        f"`{pair}`: two arms that should not differ. Their paired spread is what the "
        "comparisons above must exceed to mean anything; a verdict other than inconclusive or "
        "equivalent here is a false positive of the procedure.",
        "",
        markdown_table(COMPARISON_COLUMNS, rows),
        "",
    ]
