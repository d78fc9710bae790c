"""`trainers.evaluation.target_drift` and `meta-opt geodesics compare` on sets with known answers."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from geodesic_targets.paths import interpolate_stack
from geodesic_targets.target_set import TargetSet
from trainers.commands import cli
from trainers.errors import RunError
from trainers.evaluation.target_drift import (
    summary_by_start,
    target_drift,
)

HORIZON = 4
ROOT = pathlib.Path(__file__).resolve().parents[1]


def _target_set(points: np.ndarray, starts: np.ndarray, steps=(0, 10)) -> TargetSet:
    """Pairs with one leaf `w`: starts [M, D], points [M, T, D]."""
    count = len(starts)
    return TargetSet(
        start_params={"w": starts},
        targets={"w": points},
        levels=np.ones(count),
        end_losses=np.full(count, 0.5),
        normalized_lengths=np.linspace(1.0, 1.1, count),
        instance_keys=np.tile(np.array([[0, 7]], np.uint32), (count, 1)),
        start_steps=np.asarray(steps[:count]),
        num_uncertified=0,
        num_not_descending=0,
        task="synthetic",
        converged=np.array([1.0, 0.0][:count]),
        shortening_rounds=np.array([12.0, 200.0][:count]),
    )


@pytest.fixture
def pairs():
    rng = np.random.default_rng(0)
    starts = rng.normal(size=(2, 3))
    ends = rng.normal(size=(2, 3))
    fractions = np.arange(1, HORIZON + 1)[:, None] / HORIZON
    chords = np.stack([s + fractions * (e - s) for s, e in zip(starts, ends)])
    return starts, ends, chords


def test_the_chord_scale_is_the_evenly_spaced_chord_ending_at_the_end():
    points = interpolate_stack(
        {"w": np.zeros(2)}, {"w": np.array([4.0, 8.0])}, np.arange(1, 5) / 4
    )["w"]
    np.testing.assert_allclose(points, [[1, 2], [2, 4], [3, 6], [4, 8]])


def test_drift_of_a_moved_point_matches_the_analytic_loss(pairs):
    starts, ends, chords = pairs
    bent = chords.copy()
    bent[:, 1] += np.array([0.3, -0.4, 0.0])  # |delta| = 0.5 at point 2 of 4 in both pairs
    rows = target_drift(_target_set(chords, starts), _target_set(bent, starts))
    for row, start, end in zip(rows, starts, ends):
        chord_sq = np.sum((end - start) ** 2)
        standing_still = chord_sq * np.mean((np.arange(1, HORIZON + 1) / HORIZON) ** 2)
        assert row["imitation_drift"] == pytest.approx(0.25 / HORIZON / standing_still, rel=1e-5)
        assert row["chord_mismatch"] == pytest.approx(0.0, abs=1e-7)  # the reference is the chord
        assert row["largest_point_move"] == pytest.approx(0.5 / np.sqrt(chord_sq), rel=1e-5)
    assert [r["pair"] for r in rows] == [[0, 7, 0], [0, 7, 10]]
    assert [r["reference_converged"] for r in rows] == [1.0, 0.0]
    assert [r["other_rounds"] for r in rows] == [12.0, 200.0]


def test_chord_mismatch_measures_the_reference_against_its_chord(pairs):
    starts, ends, chords = pairs
    bent = chords.copy()
    bent[:, :-1] += 1.0  # every interior point moved by (1, 1, 1); the ends stay
    rows = target_drift(_target_set(bent, starts), _target_set(bent, starts))
    for row, start, points in zip(rows, starts, bent):
        assert row["imitation_drift"] == 0.0 and row["largest_point_move"] == 0.0
        expected = 3.0 * (HORIZON - 1) / HORIZON  # |(1, 1, 1)|^2 at T - 1 of the T points
        standing_still = np.mean(np.sum((points - start) ** 2, -1))
        assert row["chord_mismatch"] == pytest.approx(expected / standing_still, rel=1e-5)


def test_only_shared_pairs_are_compared(pairs):
    starts, _, chords = pairs
    rows = target_drift(_target_set(chords, starts), _target_set(chords[1:], starts[1:], (10,)))
    assert [r["pair"] for r in rows] == [[0, 7, 10]]
    with pytest.raises(RunError, match="no pair in common"):
        target_drift(
            _target_set(chords[:1], starts[:1]), _target_set(chords[1:], starts[1:], (10,))
        )


def test_different_starts_are_refused(pairs):
    starts, _, chords = pairs
    with pytest.raises(RunError, match="different parameters"):
        target_drift(_target_set(chords, starts), _target_set(chords, starts + 1e-3))


def test_compare_command_prints_and_writes_the_table(pairs, tmp_path, capsys):
    starts, _, chords = pairs
    bent = chords.copy()
    bent[:, 2] += 0.1
    _target_set(chords, starts).save(tmp_path / "a.npz")
    _target_set(bent, starts).save(tmp_path / "b.npz")
    out = tmp_path / "drift"
    argv = ["geodesics", "compare", str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]
    assert cli.main(argv + ["--out", str(out)]) == 0
    rows = json.loads((out / "drift.json").read_text())
    expected = target_drift(TargetSet.load(tmp_path / "a.npz"), TargetSet.load(tmp_path / "b.npz"))
    assert rows == expected  # JSON keeps every float exactly
    printed = capsys.readouterr().out
    assert (out / "drift.md").read_text() in printed and "2 shared pairs" in printed
    assert f"{rows[1]['imitation_drift']:.2e}" in printed


def test_compare_names_a_missing_file(tmp_path, capsys):
    assert (
        cli.main(["geodesics", "compare", str(tmp_path / "no.npz"), str(tmp_path / "no.npz")]) == 2
    )
    assert "no.npz: no such target set" in capsys.readouterr().err


def test_summary_by_start_groups_pairs_by_their_start_step():
    rows = [
        {"pair": [1, 2, 0], "d": 0.3},
        {"pair": [3, 4, 0], "d": 0.1},
        {"pair": [3, 4, 0], "d": 0.2},
        {"pair": [1, 2, 50], "d": 0.004},
    ]
    summary = summary_by_start(rows, "d")
    assert list(summary) == [0, 50]
    assert summary[0] == {"median": 0.2, "min": 0.1, "max": 0.3, "pairs": 3}
    assert summary[50] == {"median": 0.004, "min": 0.004, "max": 0.004, "pairs": 1}


def test_target_distances_script_reads_an_ablation_folder(pairs, tmp_path):
    starts, _, chords = pairs
    teacher = chords.copy()
    teacher[:, 1] += 0.2
    for arm, points in (("geodesic_schedule", chords), ("teacher", teacher)):
        (tmp_path / "arms" / arm).mkdir(parents=True)
        _target_set(points, starts).save(tmp_path / "arms" / arm / "targets_generated-3.npz")
    script = [sys.executable, str(ROOT / "configs" / "target_distances.py"), str(tmp_path)]
    printed = subprocess.run(
        [*script, "--out", str(tmp_path / "d.json")], capture_output=True, text=True, check=True
    ).stdout
    data = json.loads((tmp_path / "d.json").read_text())
    assert data["meta_seeds"] == [3] and "meta-seeds [3]" in printed
    expected = target_drift(
        TargetSet.load(tmp_path / "arms/geodesic_schedule/targets_generated-3.npz"),
        TargetSet.load(tmp_path / "arms/teacher/targets_generated-3.npz"),
    )
    drifts = [row["distance"] for row in data["rows"]["teacher_vs_schedule"]]
    assert drifts == [row["imitation_drift"] for row in expected] and min(drifts) > 0
    assert data["summary"]["schedule_vs_chord"]["0"]["median"] < 1e-12  # these targets are chords
    assert data["summary"]["teacher_vs_chord"]["10"]["pairs"] == 1
    missing = subprocess.run([*script[:2], str(tmp_path / "none")], capture_output=True, text=True)
    assert missing.returncode == 2 and "no meta-seed" in missing.stdout
