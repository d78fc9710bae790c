"""End-to-end `meta-opt geodesics connect | sweep | targets` on tiny configs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from geodesic_targets.paths import load_path
from geodesic_targets.targets import TargetSet
from tests.markdown import table_rows
from trainers.commands import cli
from trainers.config.experiment import load_experiment

pytestmark = pytest.mark.slow  # each test runs a geodesics command end to end
TINY = """\
name: tiny
task: {name: poly_cubic}
geodesics:
  level: 0.03
  connect: {max_depth: 4, max_steps: 300}
  sweep: {levels: [0.05, 0.03], num_pairs: 2, max_train_steps: 2000}
  targets: {num_instances: 2, num_steps: 20, horizon: 10}
"""
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


SHORTENED = [
    "geodesics.connect.shorten=true",
    "geodesics.connect.shortening.num_points=9",
    "geodesics.connect.shortening.rounds=20",
]


def test_connect_writes_path_summary_and_profile(config, tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        cli.main(["geodesics", "connect", "--config", str(config), "--out", str(out), *SHORTENED])
        == 0
    )
    printed = yaml.safe_load(capsys.readouterr().out.rsplit("results in", 1)[0])
    summary = json.loads((out / "connect.json").read_text())
    assert printed["connected"] == summary["connected"] is True
    # shortening reports its convergence ("converged in N rounds", else "not converged in N rounds")
    assert printed["converged"] == summary["converged"] and 1 <= summary["rounds"] <= 20
    assert ("; converged in" in summary["reason"]) == summary["converged"]
    assert (
        summary["normalized_length"]
        <= summary["length_before"] / summary["endpoint_distance"] + 1e-6
    )
    assert max(summary["segment_max_losses"]) <= 0.03 and summary["num_beads"] >= 2
    beads, meta = load_path(out / "path.npz")
    assert (
        meta["connected"]
        and np.asarray(list(beads.values())[0]["w"]).shape[0] == summary["num_beads"]
    )
    assert (out / "path_profile.png").read_bytes()[:8] == PNG
    assert load_experiment(out / "config.yaml") == load_experiment(config, SHORTENED)


@pytest.mark.parametrize("command", ["connect", "spectrum"])
def test_an_end_that_misses_the_level_is_named(config, tmp_path, command, capsys):
    """Both commands that train a string's ends refuse a level the training cannot reach."""
    overrides = [
        "geodesics.level=1e-9",
        "geodesics.sweep.max_train_steps=3",
        "geodesics.spectrum.path_pairs=1",
        "geodesics.spectrum.trajectory_seeds=1",
        "geodesics.spectrum.trajectory_steps=4",
        "geodesics.spectrum.trajectory_points=2",
    ]
    assert (
        cli.main(
            [
                "geodesics",
                command,
                "--config",
                str(config),
                "--out",
                str(tmp_path / "run"),
                "--no-progress",
                *(overrides if command == "spectrum" else overrides[:2]),
            ]
        )
        == 2
    )
    error = capsys.readouterr().err
    assert "model 0 did not reach level 1e-09" in error and "in 3 steps" in error
    assert "geodesics.sweep.max_train_steps" in error


def test_sweep_prints_and_writes_the_table_and_plot(config, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert (
        cli.main(["geodesics", "sweep", "--config", str(config), "--out", str(out), "--seed", "1"])
        == 0
    )
    table = (out / "sweep.md").read_text()
    assert table in capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith("| 0.0")]
    assert [row.split("|")[1].strip() for row in rows] == ["0.05", "0.03"]
    records = json.loads((out / "sweep.json").read_text())
    assert [r["level"] for r in records] == [0.05, 0.03]
    assert all(r["pairs_connected"] + r["pairs_unreached"] <= 2 for r in records)
    for row, record in zip(table_rows(table)[1:], records):  # the table shows sweep.json's numbers
        shown = row[3].split("±")[0].strip()
        if record["pairs_connected"]:
            assert float(shown) == pytest.approx(record["normalized_length_mean"], abs=5e-4)
        else:
            assert shown == "–"
    assert (out / "sweep.png").read_bytes()[:8] == PNG
    assert load_experiment(out / "config.yaml").seed == 1


def test_targets_writes_a_loadable_target_set(config, tmp_path):
    out = tmp_path / "targets"
    assert cli.main(["geodesics", "targets", "--config", str(config), "--out", str(out)]) == 0
    summary = json.loads((out / "targets.json").read_text())
    targets = TargetSet.load(out / "targets.npz")
    assert len(targets.levels) == summary["pairs_certified"] > 0
    assert (
        summary["pairs_certified"] + summary["pairs_uncertified"] + summary["pairs_not_descending"]
        == 4
    )
    assert targets.task == "poly_cubic"


def test_bad_geodesics_config_is_a_clear_error(config, capsys):
    status = cli.main(
        ["geodesics", "sweep", "--config", str(config), "geodesics.sweep.levels=[-1]"]
    )
    err = capsys.readouterr().err
    assert status == 2 and "geodesics.sweep" in err and "Traceback" not in err


@pytest.mark.parametrize("schedule, timing", [("teacher", "schedule"), ("linear", "arc_length")])
def test_targets_with_a_schedule_report_their_geometry(config, tmp_path, capsys, schedule, timing):
    out = tmp_path / "targets"
    assert (
        cli.main(
            [
                "geodesics",
                "targets",
                "--config",
                str(config),
                "--out",
                str(out),
                "--no-progress",
                f"geodesics.targets.schedule={schedule}",
                f"geodesics.targets.timing={timing}",
                "geodesics.connect.shorten=true",
                "geodesics.connect.shortening.num_points=9",
                "geodesics.connect.shortening.rounds=100",
                "geodesics.connect.shortening.check_every=20",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    summary = json.loads((out / "targets.json").read_text())
    targets = TargetSet.load(out / "targets.npz")
    expected_timing = (
        "index" if schedule == "teacher" else timing
    )  # the teacher schedule's target k is point k
    assert summary["schedule"] == targets.schedule == schedule and targets.timing == expected_timing
    assert summary["pairs_certified"] == len(targets.levels) == len(summary["pairs"])
    assert (
        summary["pairs_converged"]
        == int(np.nansum(targets.converged))
        == summary["pairs_shortened"]
    )
    assert (
        summary["largest_target_excess"] == pytest.approx(targets.largest_target_excess())
        and summary["largest_target_excess"] <= 1e-5
    )
    assert all(pair["converged (rounds)"].startswith("yes") for pair in summary["pairs"])
    rows = table_rows((out / "targets.md").read_text())
    assert (out / "targets.md").read_text().splitlines()[0][2:] in printed
    pair_rows = [r for r in rows if r[0].isdigit()]
    for row, j in zip(pair_rows, range(len(targets.levels))):  # the table shows the set's numbers
        assert float(row[4]) == pytest.approx(targets.normalized_lengths[j], abs=5e-4)
        assert float(row[5]) == pytest.approx(targets.unshortened_lengths[j], abs=5e-4)
        assert targets.normalized_lengths[j] <= targets.unshortened_lengths[j] + 1e-6
    for png in ("target_lengths.png", "target_geometry.png"):
        assert (out / png).read_bytes()[:8] == PNG


def test_spectrum_writes_index_against_loss_and_is_exact_on_a_small_net(config, tmp_path, capsys):
    """poly_cubic's MLP has 33 parameters: 33 Lanczos iterations give its whole spectrum."""
    import jax

    from geodesic_targets.spectrum import dense_hessian
    from trainers.config.experiment import build_family
    from trainers.core import keys as run_keys

    out = tmp_path / "spectrum"
    overrides = [
        "geodesics.spectrum.num_iterations=33",
        "geodesics.spectrum.num_probes=1",
        "geodesics.spectrum.trajectory_steps=6",
        "geodesics.spectrum.trajectory_points=3",
        "geodesics.spectrum.trajectory_seeds=2",
        "geodesics.spectrum.path_pairs=1",
        "geodesics.spectrum.relative_epsilon=false",
        "geodesics.spectrum_optimizers=[{name: sgd, hparams: {learning_rate: 0.1}}, {name: adam}]",
    ]
    assert (
        cli.main(
            [
                "geodesics",
                "spectrum",
                "--config",
                str(config),
                "--out",
                str(out),
                "--no-progress",
                *overrides,
            ]
        )
        == 0
    )
    report = (out / "spectrum.md").read_text()
    assert report in capsys.readouterr().out and (out / "index_vs_loss.png").read_bytes()[:8] == PNG
    data = json.loads((out / "spectrum.json").read_text())
    points, (path,) = data["points"], data["paths"]
    groups = [
        "sgd (learning_rate=0.1) trajectory",
        "adam (learning_rate=0.01) trajectory",
        "beads",
        "segment high points",
    ]
    assert list(data["groups"]) == groups and path["connected"]
    counts = [2 * 3, 2 * 3, path["beads"], path["beads"] - 1]
    assert [data["groups"][g]["points"] for g in groups] == counts
    assert [r[1] for r in table_rows(report)[1:5]] == groups
    for row in points:
        assert row["smallest"] <= row["largest"] and 0 <= row["index"] <= 1
        assert abs(row["index"] * 33 - round(row["index"] * 33)) < 1e-4  # an exact count of 33
    beads = [r for r in points if r["source"] == "beads"]
    assert max(r["loss"] for r in beads) <= 0.03  # beads lie in the level set
    # independently: the first SGD run's start, rebuilt from the run's keys, against its dense Hessian
    run = load_experiment(out / "config.yaml")
    key = run_keys.derive(run.seed, "spectrum")
    task = build_family(run).instance(jax.random.fold_in(key, 1000))
    start = task.init(jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, 1), 0), 0))
    eigenvalues = np.linalg.eigvalsh(np.asarray(dense_hessian(task.eval_loss, start), np.float64))
    first = points[0]
    assert first["step"] == 0 and first["loss"] == pytest.approx(
        float(task.eval_loss(start)), rel=1e-5
    )
    np.testing.assert_allclose(
        [first["smallest"], first["largest"]],
        [eigenvalues[0], eigenvalues[-1]],
        rtol=1e-3,
        atol=1e-5,
    )
    assert first["index"] == pytest.approx(np.mean(eigenvalues < -1e-3), abs=1e-6)
