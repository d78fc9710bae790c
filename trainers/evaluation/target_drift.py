"""How far two target sets of the same pairs are apart, in the imitation loss's own units.

A target set made by an iterative solver counts only with what a longer run changes (a
shortening stopped at its round cap, a tighter criterion). Lengths say little about that: a
path can keep its length while its points move. What a learner is trained on is the imitation
loss (`trainers.core.imitation.path_mismatch`, normalised so that standing still scores 1), so
the change is measured as the loss that following one set exactly scores against the other.
The scale it is read against is the same loss between the reference set and the evenly spaced
chord of each pair (the `chord` arm's targets for the same pair): a drift far below it cannot
move a comparison between a path arm and the chord arm.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from geodesic_targets.paths import interpolate_stack
from geodesic_targets.target_set import TargetSet
from trainers.core.imitation import path_mismatch, squared_norm
from trainers.errors import RunError


def _pair_drift(start, reference, other):
    end = jax.tree_util.tree_map(lambda x: x[-1], reference)
    horizon = jax.tree_util.tree_leaves(reference)[0].shape[0]
    chord = interpolate_stack(start, end, jnp.arange(1, horizon + 1) / horizon)  # the chord arm's
    differences = jax.tree_util.tree_map(jnp.subtract, other, reference)
    chord_length = jnp.sqrt(squared_norm(jax.tree_util.tree_map(jnp.subtract, end, start)))
    return {
        "imitation_drift": path_mismatch(other, reference, start),
        "chord_mismatch": path_mismatch(chord, reference, start),
        "largest_point_move": jnp.max(jnp.sqrt(jax.vmap(squared_norm)(differences)))
        / jnp.maximum(chord_length, 1e-12),
    }


def target_drift(reference: TargetSet, other: TargetSet) -> list[dict]:
    """Per pair the two sets share (in the reference's order), how far `other` is from it.

    Returns:
      One dict per shared pair: its key (instance key words, start step), both sets'
      normalized lengths, convergence flags and shortening rounds, and
      `imitation_drift` (the imitation loss of a learner that follows `other` exactly,
      scored on `reference`), `chord_mismatch` (the same for the evenly spaced chord: the
      scale of the difference between arms) and `largest_point_move` (the largest distance
      between corresponding points, over the chord's length).

    Raises:
      RunError: no pair in common, or a shared pair starts at different parameters.
    """
    in_other = set(other.pair_keys())
    shared_keys = [key for key in reference.pair_keys() if key in in_other]
    if not shared_keys:
        raise RunError("the two target sets have no pair in common")
    a, b = reference.subset(shared_keys), other.subset(shared_keys)
    gap = jax.tree_util.tree_map(
        lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))),
        a.start_params,
        b.start_params,
    )
    if max(jax.tree_util.tree_leaves(gap)) > 0:
        raise RunError(
            "pairs with the same key start at different parameters: the sets come from "
            "different teacher runs (another seed or task)"
        )
    drifts = jax.vmap(_pair_drift)(a.start_params, a.targets, b.targets)
    rows = []
    for j, key in enumerate(shared_keys):
        rows.append(
            {
                "pair": list(key),
                "reference_length": float(a.normalized_lengths[j]),
                "other_length": float(b.normalized_lengths[j]),
                "reference_converged": float(a.converged[j]),
                "other_converged": float(b.converged[j]),
                "reference_rounds": float(a.shortening_rounds[j]),
                "other_rounds": float(b.shortening_rounds[j]),
                **{name: float(values[j]) for name, values in drifts.items()},
            }
        )
    return rows


def drift_markdown(rows: list[dict], title: str) -> str:
    """A table with a row per pair (`target_drift`) under `title`."""
    lines = [
        f"# {title}",
        "",
        "| pair (instance, start step) | length: reference | length: other | converged | rounds "
        "| imitation drift | chord mismatch | largest point move / chord |",
        "|---|---|---|---|---|---|---|---|",
    ]
    flag = {1.0: "yes", 0.0: "no"}
    for row in rows:
        instance, step = f"{row['pair'][0]}:{row['pair'][1]}", row["pair"][2]
        converged = (
            f"{flag.get(row['reference_converged'], '-')} / {flag.get(row['other_converged'], '-')}"
        )
        rounds = f"{row['reference_rounds']:.0f} / {row['other_rounds']:.0f}"
        lines.append(
            f"| {instance}, {step} | {row['reference_length']:.4f} | {row['other_length']:.4f} "
            f"| {converged} | {rounds} | {row['imitation_drift']:.2e} "
            f"| {row['chord_mismatch']:.2e} | {row['largest_point_move']:.2e} |"
        )
    return "\n".join(lines) + "\n"


def summary_by_start(rows: list[dict], field: str) -> dict[int, dict[str, float]]:
    """`field` of `target_drift` rows summarized per pair start step (median, range, count).

    How far target sets are apart depends on where a pair starts in the teacher's run (at
    T = 100 with Adam the step-0 pairs are the furthest from their chord, at T = 50 with
    momentum the last ones), so a distance is read per start step rather than pooled.
    """
    by_start: dict[int, list[float]] = {}
    for row in rows:
        by_start.setdefault(int(row["pair"][2]), []).append(float(row[field]))
    return {
        start: {
            "median": float(np.median(values)),
            "min": float(np.min(values)),
            "max": float(np.max(values)),
            "pairs": len(values),
        }
        for start, values in sorted(by_start.items())
    }
