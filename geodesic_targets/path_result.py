"""The outcome of a string search or a shortening: a chain of beads and how it was certified."""

from __future__ import annotations

import dataclasses

import numpy as np

from common.pytree import PyTree
from geodesic_targets.paths import endpoint_distance, path_length


@dataclasses.dataclass(frozen=True)
class PathResult:
    """The outcome of a string search.

    Attributes:
      connected: every neighbouring pair's interpolated loss, on the grid, is at or
        below the threshold. Never True otherwise.
      reason: why the search stopped.
      beads: the chain, params stacked along axis 0 (ends included).
      segment_max_losses: maximum interpolated loss of each segment [num_beads - 1]
        (NaN for a segment not measured when the search stopped).
      max_interpolated_loss: the largest of them.
      threshold: the level lambda.
      num_beads: beads in the chain, ends included.
      depth: recursion levels used.
      path_length: sum of bead-to-bead distances.
      endpoint_distance: Euclidean distance between the ends.
      normalized_length: path_length / endpoint_distance.
      training_steps: bead training steps summed over beads.
      timings: seconds spent measuring segments, training beads, and in total.
      length_before: the path length before shortening (nan: not shortened).
      beads_before: beads of the chain before shortening (0: not shortened).
      unaligned_distance: the distance between the ends as given, before theta_b was
        aligned to theta_a (nan: not aligned).
      converged: shortening met its convergence criterion (False: not shortened, or
        its round budget ran out first; `geodesic_targets.shortening`).
      rounds: shortening rounds run (0: not shortened).
      criterion: the largest relative change of length over the last rounds (nan: not shortened).
      residual: the largest relative excess of a point's loss over its level after the
        last round, (F - level) / level (<= 0: every point at or below its level).
    """

    connected: bool
    reason: str
    beads: PyTree
    segment_max_losses: np.ndarray
    max_interpolated_loss: float
    threshold: float
    num_beads: int
    depth: int
    path_length: float
    endpoint_distance: float
    normalized_length: float
    training_steps: int
    timings: dict[str, float]
    length_before: float = float("nan")
    beads_before: int = 0
    unaligned_distance: float = float("nan")
    converged: bool = False
    rounds: int = 0
    criterion: float = float("nan")
    residual: float = float("nan")


def describe_path(
    beads: PyTree,
    segment_max_losses: np.ndarray,
    connected: bool,
    reason: str,
    threshold: float,
    *,
    depth: int,
    steps: int,
    timings: dict[str, float],
) -> PathResult:
    """A `PathResult` for a stacked chain: its lengths measured, the rest as given."""
    length, distance = float(path_length(beads)), float(endpoint_distance(beads))
    finite = np.isfinite(segment_max_losses)
    return PathResult(
        connected=bool(connected),
        reason=reason,
        beads=beads,
        segment_max_losses=segment_max_losses,
        max_interpolated_loss=float(np.nanmax(segment_max_losses))
        if finite.any()
        else float("nan"),
        threshold=float(threshold),
        num_beads=int(np.shape(segment_max_losses)[0]) + 1,
        depth=depth,
        path_length=length,
        endpoint_distance=distance,
        normalized_length=length / distance if distance > 0 else float("nan"),
        training_steps=int(steps),
        timings=timings,
    )
