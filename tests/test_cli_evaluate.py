"""End to end: `meta-opt demo` and `meta-opt evaluate` on tiny budgets, read back from disk and W&B."""

import json
import pathlib

import numpy as np
import pytest

from tests.wandb_offline import read_offline_run
from trainers.commands.cli import main

pytestmark = pytest.mark.slow  # compiles a whole demo

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = [
    "meta_train.num_meta_steps=4",
    "meta_train.unroll.horizon=10",
    "meta_train.unroll.unroll_length=5",
    "meta_train.validate_every=2",
    "meta_train.checkpoint_every=2",
    "meta_train.num_instances=2",
    "meta_train.imitation_batch=2",
    "geodesics.targets.num_instances=2",
    "geodesics.targets.num_steps=10",
    "geodesics.targets.horizon=5",
    "geodesics.connect.max_steps=50",
    "evaluation.seeds=2",
    "evaluation.tuning_seeds=1",
    "evaluation.steps=6",
    "evaluation.record_points=3",
    "evaluation.learning_rates=[0.01,0.1]",
    "evaluation.dampings=[0.1]",
    "evaluation.baselines=[adam,esgd]",
    "logging.mode=offline",
]


def table_rows(report: str, header_start: str) -> list[list[str]]:
    """The body rows of the first markdown table whose header starts with `header_start`."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header_start}"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def logged_table(run_path: pathlib.Path, key: str) -> dict:
    """The JSON W&B wrote for a logged `wandb.Table` (found through the run's history)."""
    entry = next(h for h in read_offline_run(run_path)["history"] if f"{key}/path" in h)
    return json.loads((run_path / "files" / entry[f"{key}/path"]).read_text())


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The tiny demo, once for the module. The shipped v2 bundles are left out of its evaluation
    (an empty bundle folder): compiling their large LSTMs would double its cost, and the rerun
    test below checks that shipped bundles are evaluated beside the demo's own (a toy one)."""
    folder = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("meta_opt.pretrained_bundles.PRETRAINED_DIR", folder / "no_bundles")
        assert main(["demo", "--out", str(folder), "--no-progress", *TINY]) == 0
    return folder


def test_demo_writes_the_report_the_plots_and_three_wandb_runs(demo, capsys):
    report = (demo / "evaluate" / "report.md").read_text()
    rows = table_rows(report, "optimizer")
    # no shipped bundle here (the fixture's empty folder): see the rerun test
    assert [r[0] for r in rows] == ["lstm (geodesic)", "lstm (loss only)", "adam", "esgd"]
    all_rows, rows = rows, [r for r in rows if not r[0].startswith("pretrained ")]
    assert rows[0][6] == "not tuned (learned)" and rows[2][6].startswith("lr=")
    assert all(r[7].endswith(" ms") for r in rows)  # each optimizer's own time per step
    results = json.loads((demo / "evaluate" / "results.json").read_text())
    # the table shows the numbers of results.json
    adam = next(o for o in results[0]["optimizers"] if o["optimizer"] == "adam")
    shown_mean, shown_se = (
        float(x) for x in rows[2][1].split("±")
    )  # "0.0564 ± 0.0030": 3 significant digits
    assert shown_mean == pytest.approx(adam["final_loss"][0], rel=5e-3)
    assert shown_se == pytest.approx(adam["final_loss"][1], abs=abs(shown_mean) * 5e-3 + 1e-12)
    assert results[0]["steps"] == 6 and adam["seeds"] == 2
    # and each seed's own numbers, whose mean is the row's
    assert len(adam["per_seed_final_loss"]) == 2 and len(adam["per_seed_test_loss"]) == 2
    assert np.mean(adam["per_seed_final_loss"]) == pytest.approx(adam["final_loss"][0], rel=1e-6)
    assert np.mean(adam["per_seed_test_loss"]) == pytest.approx(adam["test_loss"][0], rel=1e-6)
    comparison = table_rows(report, "run")
    assert {r[0] for r in comparison} == {"lstm (geodesic)", "lstm (loss only)"}
    for png in (
        "evaluate/curves_digits_mlp.png",
        "evaluate/meta_training.png",
        "targets/target_lengths.png",
    ):
        assert (demo / png).read_bytes()[:8] == PNG_MAGIC, png
    assert "meta_training.png" in report and "../targets/target_lengths.png" in report
    # W&B: the evaluation run has the table, the plot and summary numbers equal to results.json
    (eval_run,) = (demo / "evaluate" / "wandb").glob("offline-run-*")
    logged = read_offline_run(eval_run)
    assert logged["summary"]["digits_mlp/adam/final_loss_mean"] == pytest.approx(
        adam["final_loss"][0]
    )
    assert any("digits_mlp/curves/path" in h for h in logged["history"])
    table = logged_table(eval_run, "digits_mlp/table")
    assert [r[0] for r in table["data"]] == [r[0] for r in all_rows]
    for name in ("train_geodesic", "train_loss_only"):
        (train_run,) = (demo / name / "wandb").glob("offline-run-*")
        keys = set().union(*read_offline_run(train_run)["history"])
        assert {"meta_loss", "validation_meta_loss"} <= keys
    geodesic_imitation = [
        json.loads(line).get("imitation_loss")
        for line in (demo / "train_geodesic" / "metrics.jsonl").read_text().splitlines()
    ]
    loss_only_imitation = [
        json.loads(line).get("imitation_loss")
        for line in (demo / "train_loss_only" / "metrics.jsonl").read_text().splitlines()
    ]
    assert any(v for v in geodesic_imitation) and not any(v for v in loss_only_imitation)


def test_demo_rerun_resumes_and_evaluates_shipped_optimizers_beside_its_own(
    demo, tmp_path, monkeypatch, capsys
):
    """A rerun reuses the targets and the training (nothing rewritten, no W&B run reopened) and
    redoes only the evaluation, which lists every shipped pretrained optimizer (here a toy bundle)."""
    import jax

    from meta_opt import LSTMOptimizer
    from meta_opt.pretrained_bundles import save_pretrained
    from trainers.config import load_experiment, to_dict

    lstm = LSTMOptimizer(hidden_sizes=(4,))
    card = {"config": to_dict(load_experiment(demo / "config.yaml")), "meta_steps": 0}
    save_pretrained("toy", lstm, lstm.init(jax.random.PRNGKey(3)), card, "# toy\n", tmp_path)
    monkeypatch.setattr("meta_opt.pretrained_bundles.PRETRAINED_DIR", tmp_path)
    before = sorted(p.name for p in (demo / "train_geodesic" / "checkpoints").iterdir())
    targets = (demo / "targets" / "targets.npz").stat().st_mtime_ns
    assert main(["demo", "--out", str(demo), "--no-progress", *TINY]) == 0
    assert sorted(p.name for p in (demo / "train_geodesic" / "checkpoints").iterdir()) == before
    assert (
        len(list((demo / "train_geodesic" / "wandb").glob("offline-run-*"))) == 1
    )  # not even reopened
    assert (demo / "targets" / "targets.npz").stat().st_mtime_ns == targets
    assert "lstm (geodesic)" in capsys.readouterr().out
    rows = table_rows((demo / "evaluate" / "report.md").read_text(), "optimizer")
    assert [r[0] for r in rows] == [
        "lstm (geodesic)",
        "lstm (loss only)",
        "pretrained toy",
        "adam",
        "esgd",
    ]


def test_evaluate_a_checkpoint_on_two_tasks(demo, tmp_path, capsys):
    out = tmp_path / "eval"
    status = main(
        [
            "evaluate",
            "--checkpoint",
            str(demo / "train_loss_only"),
            "--tasks",
            "digits_mlp,quadratic",
            "--steps",
            "5",
            "--seeds",
            "3",
            "--tuning-seeds",
            "2",
            "--baselines",
            "sgd,momentum",
            "--jacobi",
            "--out",
            str(out),
            "--no-progress",
            "evaluation.learning_rates=[0.001,0.01]",
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "report:" in printed and "W&B run:" in printed
    report = (out / "report.md").read_text()
    assert "## digits_mlp" in report and "## quadratic" in report
    results = {t["task"]: t for t in json.loads((out / "results.json").read_text())}
    for task in ("digits_mlp", "quadratic"):
        assert [o["optimizer"] for o in results[task]["optimizers"]] == [
            "lstm",
            "sgd",
            "momentum",
            "jacobi",
        ]
        assert all(o["seeds"] == 3 for o in results[task]["optimizers"])
        assert (out / f"curves_{task}.png").read_bytes()[:8] == PNG_MAGIC
    assert results["quadratic"]["steps"] == 5
    (run,) = (out / "wandb").glob("offline-run-*")
    logged = read_offline_run(run)
    assert {"digits_mlp/lstm/final_loss_mean", "quadratic/jacobi/final_loss_mean"} <= set(
        logged["summary"]
    )
    assert logged["config"]["evaluation"]["seeds"] == 3
    comparison = table_rows(report, "task")
    assert [r[0] for r in comparison] == ["digits_mlp", "quadratic"]
    ratio = float(comparison[0][6].rstrip("x"))
    lstm, best = (
        np.mean(
            [o["final_loss"][0] for o in results["digits_mlp"]["optimizers"] if o["optimizer"] == n]
        )
        for n in ("lstm", comparison[0][4])
    )
    assert ratio == pytest.approx(lstm / best, abs=0.006)


def test_evaluate_names_bad_input(tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(tmp_path)]) == 2
    assert "neither a checkpoint folder" in capsys.readouterr().err


def test_evaluate_rejects_an_unknown_task_or_setting(demo, capsys):
    run = str(demo / "train_loss_only")
    assert main(["evaluate", "--checkpoint", run, "--tasks", "nope", "--out", str(demo / "x")]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", run, "--seeds", "1", "--out", str(demo / "x")]) == 2
    assert "seeds >= 2" in capsys.readouterr().err
    assert (
        main(["evaluate", "--checkpoint", run, "evaluation.seedz=3", "--out", str(demo / "x")]) == 2
    )
    assert "evaluation.seedz" in capsys.readouterr().err


def test_one_config_gives_the_same_targets_through_geodesics_targets_train_and_demo(demo, tmp_path):
    """Every command derives the target key from the seed with the same tag (trainers.core.keys)."""
    from geodesic_targets.targets import TargetSet

    assert (
        main(
            [
                "geodesics",
                "targets",
                "--config",
                "configs/demo.yaml",
                "--out",
                str(tmp_path / "targets"),
                "--no-progress",
                *TINY,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "train",
                "--config",
                "configs/demo.yaml",
                "--out",
                str(tmp_path / "train"),
                "--no-progress",
                *TINY,
                "meta_train.num_meta_steps=1",
            ]
        )
        == 0
    )
    sets = [
        TargetSet.load(path)
        for path in (
            demo / "targets" / "targets.npz",
            tmp_path / "targets" / "targets.npz",
            tmp_path / "train" / "targets.npz",
        )
    ]
    for other in sets[1:]:
        np.testing.assert_array_equal(other.levels, sets[0].levels)
        np.testing.assert_array_equal(other.instance_keys, sets[0].instance_keys)
        for a, b in zip(*(jax_leaves(s.targets) for s in (sets[0], other))):
            np.testing.assert_array_equal(a, b)


def jax_leaves(tree):
    import jax

    return jax.tree_util.tree_leaves(tree)


SUITE = """\
description: two tasks of kinds the demo's digits optimizer never met
unseen: true
steps: 5
speedup_horizon: 2
tasks:
  - {name: quadratic}
  - {name: logreg_badly_scaled, options: {data: wine, batch_size: 16}, steps: 4, label: logreg}
"""


def test_evaluate_on_a_suite_writes_its_aggregate_and_refuses_a_seen_kind(demo, tmp_path, capsys):
    from trainers.evaluation.suite_scores import aggregate, score_suite

    suite = tmp_path / "tiny_suite.yaml"
    suite.write_text(SUITE)
    out = tmp_path / "suite_eval"
    run = str(demo / "train_loss_only")
    common = ["--seeds", "3", "--tuning-seeds", "1", "--baselines", "adam,momentum"]
    common += ["--no-progress", "evaluation.learning_rates=[0.01,0.1]"]
    args = ["evaluate", "--checkpoint", run, "--suite", str(suite), "--out", str(out), *common]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert [t["task"] for t in results] == ["quadratic", "logreg"]
    assert [t["steps"] for t in results] == [5, 4]
    for task in results:  # Adam's grid ran twice the task's steps for the speed-ups
        assert task["adam_reference"]["curve_steps"][-1] == 2 * task["steps"]
    saved = json.loads((out / "suite.json").read_text())
    assert saved["suite"] == "tiny_suite" and saved["unseen"] is True
    # the written aggregate is what the library computes again from results.json
    scores = score_suite(results, learned="lstm")
    again = {a.score: a for a in aggregate(scores, seed=0)}
    for row in saved["optimizers"]["lstm"]["aggregate"]:
        assert row["iqm"] == pytest.approx(again[row["score"]].iqm, nan_ok=True)
        assert row["tasks"] == again[row["score"]].tasks
    first = saved["optimizers"]["lstm"]["tasks"][0]
    lstm, best = (
        np.mean(
            next(o for o in results[0]["optimizers"] if o["optimizer"] == n)["per_seed_final_loss"]
        )
        for n in ("lstm", first["train"]["baseline"])
    )
    assert first["train"]["ratio"] == pytest.approx(lstm / best)
    report = (out / "report.md").read_text()
    assert "## Suite `tiny_suite`" in report and "Marked unseen" in report
    assert table_rows(report, "score")[0][0] == "train ratio"
    (wandb_run,) = (out / "wandb").glob("offline-run-*")
    assert "suite/lstm/train_ratio_iqm" in read_offline_run(wandb_run)["summary"]

    seen = tmp_path / "seen.yaml"  # wine_mlp is an MLP classifier, as the demo's digits_mlp
    seen.write_text("unseen: true\ntasks:\n  - {name: wine_mlp}\n")
    capsys.readouterr()
    args = ["evaluate", "--checkpoint", run, "--suite", str(seen), "--out", str(tmp_path / "no")]
    assert main([*args, *common]) == 2
    error = capsys.readouterr().err
    assert "marked unseen" in error and "wine_mlp is a mlp_classifier task" in error
    assert not (tmp_path / "no" / "results.json").exists()
    assert main([*args, "--tasks", "quadratic", *common]) == 2
    assert "--suite is the whole task list" in capsys.readouterr().err
