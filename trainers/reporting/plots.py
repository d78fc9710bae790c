"""Every plot the project writes, as PNG files.

Figures are built with matplotlib's object API (`matplotlib.figure.Figure`), which
renders PNGs without pyplot or a GUI backend, so no library module chooses a backend
and plotting works the same on servers, in CI and inside notebooks.
"""

from __future__ import annotations

import math
import pathlib
import textwrap
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

Points = Sequence[tuple[float, float]]


def save_figure(fig: Figure, path: str | pathlib.Path) -> Figure:
    """Writes a figure to a PNG (tight layout, 120 dpi) and returns it (tests read its data).

    Axes titles too wide for the figure are wrapped first: a title is centred over its
    axes, and `tight_layout` makes room above a title but not beside it, so a long one
    (the targets' task, schedule, timing and horizon) would be cut at both edges.
    """
    for ax in fig.axes:
        _wrap_title(fig, ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return fig


def _agg_canvas(fig: Figure):
    """The figure's Agg canvas (the one its PNGs are drawn with), attached on first use."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)


def _wrap_title(fig: Figure, ax) -> None:
    """Breaks `ax`'s title into lines that fit within the figure's width."""
    title = ax.title
    text = title.get_text()
    if not text:
        return
    renderer = _agg_canvas(fig).get_renderer()
    width = title.get_window_extent(renderer).width
    available = 0.9 * fig.bbox.width
    if width <= available:
        return
    chars = max(int(len(text) * available / width), 10)
    title.set_text(textwrap.fill(text, chars))


def finite_mean_se(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of [K, P] curves: mean and SE over the finite entries (diverged runs drop out)."""
    curves = np.where(np.isfinite(curves), np.asarray(curves, np.float64), np.nan)
    count = np.sum(np.isfinite(curves), axis=0)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan columns stay nan
        mean = np.nanmean(curves, axis=0)
        se = np.nanstd(curves, axis=0, ddof=1) / np.sqrt(count) if curves.shape[0] > 1 else 0 * mean
    return mean, np.nan_to_num(se)


def plot_loss_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray, bool]],
    path: str | pathlib.Path,
    title: str,
    target_loss: float = math.nan,
) -> Figure:
    """Training loss against inner steps: per optimizer the mean over seeds with a ±1 SE band.

    Args:
      curves: label -> (steps [P], per-seed curves [K, P], learned?); learned optimizers
        are drawn bold, baselines dashed.
      path: the PNG file.
      title: figure title.
      target_loss: drawn as a dotted line when finite.
    """
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for label, (steps, runs, learned) in curves.items():
        mean, se = finite_mean_se(runs)
        style = {"linewidth": 2.4} if learned else {"linewidth": 1.2, "linestyle": "--"}
        (line,) = ax.plot(steps, mean, label=label, **style)
        ax.fill_between(
            steps, np.maximum(mean - se, 1e-12), mean + se, color=line.get_color(), alpha=0.2
        )
    if math.isfinite(target_loss):
        ax.axhline(target_loss, color="gray", linewidth=0.8, linestyle=":", label="target loss")
    ax.set(yscale="log", xlabel="inner step", ylabel="training loss", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_meta_training(
    histories: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]],
    path: str | pathlib.Path,
    title: str = "meta-training",
) -> Figure:
    """Validation meta-loss (markers) and training loss term (faint) against meta-iterations.

    Args:
      histories: run label -> {"validation": (steps, values), "training": (steps, values)}.
    """
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for index, (label, series) in enumerate(histories.items()):
        color = f"C{index}"
        steps, values = series.get("validation", (np.zeros(0), np.zeros(0)))
        if len(steps):
            ax.plot(
                steps,
                values,
                "o-",
                color=color,
                markersize=3,
                label=f"{label}: validation meta-loss",
            )
        steps, values = series.get("training", (np.zeros(0), np.zeros(0)))
        if len(steps):
            ax.plot(
                steps,
                values,
                color=color,
                alpha=0.25,
                linewidth=0.8,
                label=f"{label}: training loss term",
            )
    ax.set(yscale="log", xlabel="meta-iteration", ylabel="mean inner loss", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_sweep(
    x: Sequence[float],
    x_label: str,
    panels: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | pathlib.Path,
    title: str,
    reference: Mapping[str, Points | None] | None = None,
) -> Figure:
    """An energy sweep: one panel per quantity (mean ± SE against `x`), published values overlaid.

    Args:
      x: the sweep's x values (the level, or the ends' test error).
      x_label: what `x` measures.
      panels: quantity name -> (means, standard errors), one per x.
      path: the PNG file.
      title: figure title.
      reference: quantity name -> published (x, y) points, drawn where present.
    """
    fig = Figure(figsize=(5 * len(panels), 4))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (label, (means, errors)) in zip(axes, panels.items()):
        ax.errorbar(x, means, yerr=errors, marker="o", capsize=3, label="this run")
        if reference and reference.get(label):
            xs, ys = zip(*reference[label])
            ax.plot(xs, ys, "s--", alpha=0.6, label="Freeman & Bruna (published)")
        ax.set(xlabel=x_label, ylabel=label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_path_profile(
    segments: Sequence[tuple[np.ndarray, np.ndarray]],
    bead_positions: np.ndarray,
    bead_losses: np.ndarray,
    chord: tuple[np.ndarray, np.ndarray],
    threshold: float,
    path: str | pathlib.Path,
    title: str,
) -> Figure:
    """The loss along a bead chain and along the chord between its ends.

    Args:
      segments: per segment, (arc-length positions, losses) along it.
      bead_positions, bead_losses: the beads' arc-length positions and losses.
      chord: (positions rescaled to the chain's length, losses) along the straight segment.
      threshold: the level, drawn as a horizontal line.
    """
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for i, (positions, losses) in enumerate(segments):
        ax.plot(positions, losses, color="C0", label="bead chain" if i == 0 else None)
    ax.scatter(bead_positions, bead_losses, color="C0", zorder=3)
    ax.plot(*chord, "--", color="C1", label="straight segment (rescaled to the chain's length)")
    ax.axhline(threshold, color="k", lw=0.8, label="level λ")
    ax.set(xlabel="arc length along the chain", ylabel="eval loss", title=title)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_target_lengths(
    normalized_lengths, levels, start_steps, path: str | pathlib.Path, title: str
) -> Figure:
    """Each target pair's normalized geodesic length against its level, coloured by start step.

    A length of 1 means the straight segment between the pair's ends already lies in
    the level set (the target path is the chord); above 1 the path bends.
    """
    fig = Figure(figsize=(6.5, 4))
    ax = fig.add_subplot()
    points = ax.scatter(levels, normalized_lengths, c=start_steps, cmap="viridis", s=24)
    fig.colorbar(points, ax=ax, label="start step t of the pair")
    ax.axhline(1.0, color="gray", lw=0.8, ls=":", label="straight segment (length 1)")
    ax.set(
        xscale="log", xlabel="level λ = F(θ_t)", ylabel="normalized geodesic length", title=title
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def path_profile_data(loss_fn: Callable, beads, points_per_segment: int = 16):
    """The data of `plot_path_profile` for a chain of beads: `(segments, positions, losses, chord)`."""
    from geodesic_targets.interpolation import grid, interpolated_losses
    from geodesic_targets.paths import bead, segment_lengths

    lengths = np.asarray(segment_lengths(beads))
    n = len(lengths) + 1
    ts = grid(points_per_segment)
    starts = np.concatenate([[0.0], np.cumsum(lengths)])
    segments = [
        (
            starts[i] + np.asarray(ts) * lengths[i],
            np.asarray(interpolated_losses(loss_fn, bead(beads, i), bead(beads, i + 1), ts)),
        )
        for i in range(n - 1)
    ]
    bead_losses = np.array([float(loss_fn(bead(beads, i))) for i in range(n)])
    fine = grid(4 * points_per_segment)
    chord = (
        np.asarray(fine) * starts[-1],
        np.asarray(interpolated_losses(loss_fn, bead(beads, 0), bead(beads, n - 1), fine)),
    )
    return segments, starts, bead_losses, chord


def plot_target_geometry(
    levels, lengths, unshortened, deviations, breaks, path: str | pathlib.Path, title: str
) -> Figure:
    """Three panels against the pair's level: normalized length (after, and before shortening),
    the path's largest distance from the chord over the chord's length, and the fraction of
    teacher steps at which the chord is above the teacher's loss."""
    fig = Figure(figsize=(13, 4))
    axes = fig.subplots(1, 3)
    axes[0].scatter(levels, lengths, s=24, label="target path")
    if np.isfinite(unshortened).any():
        axes[0].scatter(levels, unshortened, s=24, marker="x", label="before shortening")
    axes[0].axhline(1.0, color="gray", lw=0.8, ls=":", label="chord (length 1)")
    axes[0].set(ylabel="normalized length")
    axes[1].scatter(levels, deviations, s=24)
    axes[1].set(ylabel="max distance from chord / chord length")
    axes[2].scatter(levels, breaks, s=24)
    axes[2].set(ylabel="fraction of teacher steps the chord breaks", ylim=(-0.05, 1.05))
    for ax in axes:
        ax.set(xscale="log", xlabel="level λ = F(θ_t)")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)
