"""Plots and reference values for energy sweeps.

`../shared/reference/freeman_bruna_figures.txt` holds values extracted from
Freeman & Bruna's published figures: a header line naming the figure (e.g.
`normlengthcubics.pdf ...`) followed by a line `M1 (x,y) (x,y) ...`.
"""

from __future__ import annotations

import pathlib
import re
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402

from geodesic_targets.sweep import LevelResult  # noqa: E402

_POINT = re.compile(r"\(([-+0-9.eE]+),([-+0-9.eE]+)\)")


def save_figure(fig, path: str | pathlib.Path) -> None:
    """Writes a figure to a PNG (tight layout, 120 dpi) and frees it."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def load_reference(path: str | pathlib.Path) -> dict[str, list[tuple[float, float]]]:
    """Figure name (e.g. "normlengthcubics") -> its (x, y) points, from the reference file."""
    figures, name = {}, None
    for line in pathlib.Path(path).read_text().splitlines():
        if ".pdf" in line:
            name = line.split(".pdf")[0].strip()
        elif line.startswith("M1") and name:
            figures[name] = [(float(x), float(y)) for x, y in _POINT.findall(line)]
    return figures


def plot_sweep(results: Sequence[LevelResult], path: str | pathlib.Path, title: str,
               reference: Optional[dict[str, list[tuple[float, float]]]] = None,
               x_axis: str = "level") -> None:
    """Writes a PNG: normalized geodesic length and bead count against the level.

    Args:
      results: the sweep.
      path: the PNG file.
      title: figure title (task name).
      reference: optional {"normalized length": points, "beads": points} to overlay
        (published values).
      x_axis: "level" (the eval loss) or "test_error" (% test error of the ends,
        the x-axis of Freeman & Bruna's MNIST and CIFAR figures), so that a
        reference is only drawn against the quantity its own x-axis measures.
    """
    if x_axis == "test_error":
        levels, x_label = [r.test_error_mean for r in results], "test error of the ends (%)"
    else:
        levels, x_label = [r.level for r in results], "energy level λ (eval loss)"
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    panels = (("normalized length", [r.normalized_length_mean for r in results],
               [r.normalized_length_se for r in results]),
              ("beads", [r.beads_mean for r in results], [r.beads_se for r in results]))
    for ax, (label, means, errors) in zip(axes, panels):
        ax.errorbar(levels, means, yerr=errors, marker="o", capsize=3, label="this run")
        if reference and reference.get(label):
            xs, ys = zip(*reference[label])
            ax.plot(xs, ys, "s--", alpha=0.6, label="Freeman & Bruna (published)")
        ax.set_xlabel(x_label)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    save_figure(fig, path)


def plot_path_profile(loss_fn, beads, threshold: float, path: str | pathlib.Path, title: str,
                      points_per_segment: int = 16) -> None:
    """Writes a PNG of the loss along the bead chain and along the straight segment.

    Args:
      loss_fn: `params -> scalar`.
      beads: the chain, stacked along axis 0.
      threshold: the level, drawn as a horizontal line.
      path: the PNG file.
      title: figure title.
      points_per_segment: loss evaluations per segment.
    """
    import jax
    import numpy as np

    from geodesic_targets.interpolation import grid, interpolated_losses
    from geodesic_targets.paths import bead, segment_lengths

    n = jax.tree_util.tree_leaves(beads)[0].shape[0]
    ts = grid(points_per_segment)
    lengths = np.asarray(segment_lengths(beads))
    starts = np.concatenate([[0.0], np.cumsum(lengths)])
    fig, ax = plt.subplots(figsize=(7, 4))
    for i in range(n - 1):
        losses = interpolated_losses(loss_fn, bead(beads, i), bead(beads, i + 1), ts)
        ax.plot(starts[i] + np.asarray(ts) * lengths[i], losses, color="C0",
                label="bead chain" if i == 0 else None)
    ax.scatter(starts, [float(loss_fn(bead(beads, i))) for i in range(n)], color="C0", zorder=3)
    straight = interpolated_losses(loss_fn, bead(beads, 0), bead(beads, n - 1), grid(4 * points_per_segment))
    ax.plot(np.asarray(grid(4 * points_per_segment)) * starts[-1], straight, "--", color="C1",
            label="straight segment (rescaled to the chain's length)")
    ax.axhline(threshold, color="k", lw=0.8, label="level λ")
    ax.set_xlabel("arc length along the chain")
    ax.set_ylabel("eval loss")
    ax.set_title(title)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_target_lengths(normalized_lengths, levels, start_steps, path: str | pathlib.Path,
                        title: str) -> None:
    """Writes a PNG: each target pair's normalized geodesic length against its level.

    A length of 1 means the straight segment between the pair's ends already lies in
    the level set (the target path is the chord); above 1 the geodesic bends.

    Args:
      normalized_lengths: chain length over end-to-end distance, one per pair.
      levels: lambda = F(theta_t) of each pair (the x-axis, log scale).
      start_steps: t of each pair (the colour).
      path: the PNG file.
      title: figure title.
    """
    fig, ax = plt.subplots(figsize=(6.5, 4))
    points = ax.scatter(levels, normalized_lengths, c=start_steps, cmap="viridis", s=24)
    fig.colorbar(points, ax=ax, label="start step t of the pair")
    ax.axhline(1.0, color="gray", lw=0.8, ls=":", label="straight segment (length 1)")
    ax.set(xscale="log", xlabel="level λ = F(θ_t)", ylabel="normalized geodesic length", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save_figure(fig, path)
