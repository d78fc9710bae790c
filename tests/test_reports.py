"""Meta-training comparisons, plots and checkpoint arguments of the evaluation commands."""

import json

import numpy as np
import pytest

from tests.markdown import table_rows
from trainers.io.checkpoint import CheckpointError, checkpoint_step
from trainers.pipelines.evaluate import checkpoint_folder, parse_checkpoint_arguments
from trainers.reporting.plots import plot_target_lengths
from trainers.reporting.training_report import (
    compare_runs,
    comparison_markdown,
    first_step_at_or_below,
    plot_runs,
    read_history,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_metrics(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_read_history_keeps_the_last_value_of_a_step_logged_twice(tmp_path):
    run = write_metrics(
        tmp_path / "run",
        [
            {"step": 0, "validation_meta_loss": 2.0},
            {"step": 1, "meta_loss": 1.5},
            {"step": 2, "validation_meta_loss": 1.0},
            {"step": 2, "validation_meta_loss": 0.9},  # resumed
            {"step": 4, "validation_meta_loss": None},
        ],
    )
    steps, values = read_history(run, "validation_meta_loss")
    assert steps.tolist() == [0, 2, 4]
    np.testing.assert_array_equal(values[:2], [2.0, 0.9])
    assert np.isnan(values[2])
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        read_history(tmp_path / "nothing", "meta_loss")


def test_first_step_at_or_below():
    steps, values = np.array([0, 10, 20, 30]), np.array([3.0, 1.0, 2.0, 0.5])
    assert first_step_at_or_below(steps, values, 1.0) == 10
    assert first_step_at_or_below(steps, values, 0.6) == 30
    assert first_step_at_or_below(steps, values, 0.1) is None


def test_compare_runs_uses_the_level_every_run_reaches(tmp_path):
    fast = write_metrics(
        tmp_path / "fast",
        [
            {"step": s, "validation_meta_loss": v}
            for s, v in [(0, 2.0), (10, 0.8), (20, 0.5), (30, 0.4)]
        ],
    )
    slow = write_metrics(
        tmp_path / "slow",
        [
            {"step": s, "validation_meta_loss": v}
            for s, v in [(0, 2.0), (10, 1.5), (20, 0.9), (30, 0.7)]
        ],
    )
    comparison = compare_runs({"fast": fast, "slow": slow})
    assert comparison["level"] == pytest.approx(0.7)  # the slow run's best
    assert comparison["runs"]["fast"] == {"steps_to_level": 20, "best": 0.4, "final": 0.4}
    assert comparison["runs"]["slow"]["steps_to_level"] == 30
    assert ["fast", "20", "0.4", "0.4"] in table_rows(comparison_markdown(comparison))
    silent = write_metrics(tmp_path / "silent", [{"step": 1, "meta_loss": 1.0}])
    with pytest.raises(ValueError, match="validate_every"):
        compare_runs({"fast": fast, "silent": silent})
    figure = plot_runs({"fast": fast, "slow": slow}, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG_MAGIC
    lines = {
        line.get_label(): line for line in figure.axes[0].lines
    }  # the plotted data is the logged data
    np.testing.assert_array_equal(lines["fast: validation meta-loss"].get_xdata(), [0, 10, 20, 30])
    np.testing.assert_array_equal(
        lines["slow: validation meta-loss"].get_ydata(), [2.0, 1.5, 0.9, 0.7]
    )


def test_plot_target_lengths_writes_a_png(tmp_path):
    figure = plot_target_lengths(
        np.array([1.0, 1.2, 1.05]),
        np.array([2.0, 0.5, 0.1]),
        np.array([0, 20, 40]),
        tmp_path / "lengths.png",
        "targets",
    )
    assert (tmp_path / "lengths.png").read_bytes()[:8] == PNG_MAGIC
    points = figure.axes[0].collections[0]  # x = level, y = normalized length, colour = start step
    np.testing.assert_allclose(points.get_offsets(), [[2.0, 1.0], [0.5, 1.2], [0.1, 1.05]])
    np.testing.assert_allclose(points.get_array(), [0, 20, 40])


def test_parse_checkpoint_arguments():
    assert parse_checkpoint_arguments(["runs/a/train"]) == [("lstm", "runs/a/train")]
    assert parse_checkpoint_arguments(["geo=runs/a", "runs/b/train"]) == [
        ("geo", "runs/a"),
        ("lstm (train)", "runs/b/train"),
    ]
    with pytest.raises(ValueError, match="LABEL=DIR"):
        parse_checkpoint_arguments(["x/train", "y/train"])


def test_checkpoint_folder_accepts_a_run_or_a_checkpoint(tmp_path):
    for step in (10, 20):
        folder = tmp_path / "checkpoints" / f"ckpt-{step:08d}"
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text("{}")
    assert checkpoint_folder(tmp_path).name == "ckpt-00000020"
    assert checkpoint_step(checkpoint_folder(tmp_path)) == 20
    with pytest.raises(CheckpointError, match="ckpt-<step>"):
        checkpoint_step(tmp_path / "checkpoints")
    assert checkpoint_folder(tmp_path / "checkpoints" / "ckpt-00000010").name == "ckpt-00000010"
    with pytest.raises(CheckpointError, match="neither a checkpoint folder"):
        checkpoint_folder(tmp_path / "empty")


def test_a_long_plot_title_is_wrapped_inside_the_figure(tmp_path):
    title = (
        "digits_mlp: targets, schedule teacher, timing index, T = 100 (24 pairs), "
        "shortened to convergence"
    )
    figure = plot_target_lengths(
        np.array([1.0, 1.2]), np.array([2.0, 0.5]), np.array([0, 20]), tmp_path / "t.png", title
    )
    shown = figure.axes[0].title
    box = shown.get_window_extent(figure.canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= figure.bbox.width  # nothing cut at the edges
    assert shown.get_text().replace("\n", " ") == title and "\n" in shown.get_text()
    short = plot_target_lengths(
        np.array([1.0]), np.array([2.0]), np.array([0]), tmp_path / "s.png", "targets"
    )
    assert short.axes[0].title.get_text() == "targets"
