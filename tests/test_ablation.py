"""The supervision ablation: arms and budgets, its statistics, and `meta-opt ablation` end to end."""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib

import jax
import numpy as np
import pytest

from tests.markdown import table_rows
from tests.wandb_offline import read_offline_run
from trainers.commands import cli
from trainers.config import ConfigError, load_experiment
from trainers.config.experiment import OptimizerConfig
from trainers.core.trajectories import Trajectories, run_grid
from trainers.evaluation.contenders import learned_contender
from trainers.evaluation.evaluate import evaluation_keys
from trainers.evaluation.statistics import censored_median
from trainers.evaluation.verdicts import PairedInterval, interval_verdict, paired_interval
from trainers.pipelines import ablation
from trainers.pipelines.ablation import (
    ArmRun,
    ablation_arms,
    arm_config,
    curve_steps,
    learned_runs,
    step_cost,
    teacher_label,
)
from trainers.reporting.ablation_report import (
    ArmEvaluation,
    common_level,
    inner_steps_to_level,
)

TINY = """\
name: tiny_ablation
task:
  name: digits_mlp
  options: {hidden_sizes: [8], batch_size: 32}
geodesics:
  baseline: {name: adam, hparams: {learning_rate: 0.1}}
  targets: {num_instances: 1, num_steps: 10, horizon: 5}
meta_train:
  num_instances: 2
  unroll: {horizon: 10, unroll_length: 5}
  lstm: {hidden_sizes: [4]}
  imitation_batch: 2
  validation_seeds: 2
ablation:
  arms: [none, chord]
  meta_seeds: 2
  inner_step_budget: 60
  extra_teachers: [{name: sgd, hparams: {learning_rate: 0.5}}]
  extra_teacher_arms: [teacher]
  curve_points: 2
  comparisons: ["chord:none"]
evaluation:
  seeds: 3
  tuning_seeds: 1
  baselines: [adam]
  learning_rates: [0.1]
  record_points: 5
logging: {mode: offline}
"""


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def test_arms_take_the_meta_steps_their_budget_buys(config_path):
    config = load_experiment(config_path)
    arms = ablation_arms(config)
    assert [arm.label for arm in arms] == ["none", "chord", "teacher @ sgd lr=0.5"]
    configs = [arm_config(config, arm) for arm in arms]
    # none: 2 instances x 5 steps = 10 per meta-step; imitation adds 2 pairs x T = 5
    assert [step_cost(c) for c in configs] == [10, 20, 20]
    assert [c.meta_train.num_meta_steps for c in configs] == [6, 3, 3]
    assert [c.meta_train.imitation_weight for c in configs] == [0.0, 1.0, 1.0]
    assert [c.meta_train.supervision for c in configs] == ["none", "chord", "teacher"]
    assert configs[2].geodesics.baseline == OptimizerConfig("sgd", {"learning_rate": 0.5})
    assert configs[0].geodesics.baseline == config.geodesics.baseline
    assert all(c.seed == config.seed for c in configs)  # same validation instances for every arm


def test_the_recipe_ablation_matches_inner_steps_and_holds_out_the_same_validation_data():
    config = load_experiment("configs/ablation_recipe_hierarchical.yaml")
    configs = {arm.label: arm_config(config, arm) for arm in ablation_arms(config)}
    assert list(configs) == ["none", "teacher", "validation_scored"]
    # 4 instances x 4 families x 20 steps per meta-step; teacher adds 2 pairs x T = 100
    assert {k: step_cost(c) for k, c in configs.items()} == {
        "none": 320,
        "teacher": 520,
        "validation_scored": 320,
    }
    assert {k: c.meta_train.num_meta_steps for k, c in configs.items()} == {
        "none": 1000,
        "teacher": 615,
        "validation_scored": 1000,
    }
    assert [c.meta_train.unroll.score_on for c in configs.values()] == [
        "train",
        "train",
        "validation",
    ]
    for c in configs.values():  # every arm trains on the same examples of every family
        sizes = [c.task.options["validation_size"]]
        sizes += [t.options["validation_size"] for t in c.meta_train.extra_tasks]
        assert sizes == [256, 256, 1024, 256] and c.meta_train.lstm.kind == "hierarchical"


def test_variants_are_arms_with_overrides_under_their_own_label(config_path):
    variant = (
        "ablation.variants=[{label: wide_none, supervision: none, "
        "overrides: ['meta_train.num_instances=4']}]"
    )
    config = load_experiment(config_path, [variant, "ablation.comparisons=[wide_none:none]"])
    arms = ablation_arms(config)
    assert [a.label for a in arms] == ["none", "chord", "wide_none", "teacher @ sgd lr=0.5"]
    wide = arm_config(config, arms[2])
    assert wide.meta_train.supervision == "none" and wide.meta_train.num_instances == 4
    assert arm_config(config, arms[0]).meta_train.num_instances == 2  # the others unchanged
    # the budget buys the variant's own meta-steps: 4 instances x 5 steps = 20 per meta-step
    assert (step_cost(wide), wide.meta_train.num_meta_steps) == (20, 3)


@pytest.mark.parametrize(
    "variant, message",
    [
        ("{label: v, supervision: bogus}", "unknown arm 'bogus'"),
        ("{label: chord, supervision: none}", "not an arm's name"),
        ("{label: v, supervision: none, overrides: ['meta_train.nope=1']}", "variants\\[0\\]"),
        (
            "{label: v, supervision: none, overrides: ['meta_train.unroll.score_on=validation']}",
            "validation_size",
        ),
    ],
)
def test_bad_variants_are_config_errors(config_path, variant, message):
    with pytest.raises(ConfigError, match=message):
        load_experiment(config_path, [f"ablation.variants=[{variant}]"])


def test_a_budget_below_one_meta_step_is_an_error(config_path):
    from trainers.errors import RunError

    config = load_experiment(config_path, ["ablation.inner_step_budget=15"])
    arm_config(config, ablation_arms(config)[0])  # none: 10 inner steps fit
    with pytest.raises(RunError, match="buys no meta-step of arm 'chord'"):
        arm_config(config, ablation_arms(config)[1])


def test_no_budget_keeps_the_configured_meta_steps(config_path):
    config = load_experiment(
        config_path, ["ablation.inner_step_budget=0", "meta_train.num_meta_steps=7"]
    )
    assert {arm_config(config, arm).meta_train.num_meta_steps for arm in ablation_arms(config)} == {
        7
    }
    assert "equal outer updates. Every arm takes 7 meta-steps" in ablation.budget_note(config)
    matched = load_experiment(config_path)
    assert "equal inner steps. Every arm computes at most 60 inner" in ablation.budget_note(matched)


@pytest.mark.parametrize(
    "override, message",
    [
        ("ablation.arms=[none,bogus]", "bogus"),
        ("ablation.meta_seeds=1", "meta_seeds >= 2"),
        ("ablation.extra_teacher_arms=[none]", "no teacher"),
        ("ablation.comparisons=[chord]", "arm:arm"),
        ("ablation.imitation_weight=0", "imitation_weight must be > 0"),
    ],
)
def test_bad_ablation_settings_are_config_errors(config_path, override, message):
    with pytest.raises(ConfigError, match=message):
        load_experiment(config_path, [override])


def test_teacher_labels_name_the_optimizer_and_its_settings():
    assert teacher_label(OptimizerConfig("adam", {"learning_rate": 0.03})) == "adam lr=0.03"
    assert (
        teacher_label(OptimizerConfig("esgd", {"learning_rate": 0.1, "damping": 1e-3}))
        == "esgd damping=0.001,lr=0.1"
    )


def test_curve_steps_are_even_and_include_both_ends():
    np.testing.assert_array_equal(curve_steps(10, 5), [0, 2, 4, 6, 8, 10])
    np.testing.assert_array_equal(curve_steps(3, 10), [0, 1, 2, 3])


def test_paired_interval_matches_the_t_interval_by_hand():
    a = np.array([1.0, 2.0, 3.0, 4.0, 6.0])
    b = np.array([1.5, 2.0, 3.5, 4.0, 6.0])
    diff = a - b  # mean -0.2, sample sd sqrt(0.075 * 4 / 4) ...
    interval = paired_interval(a, b)
    se = np.std(diff, ddof=1) / math.sqrt(5)
    t_975_df4 = 2.7764451051977987  # tables: t(0.975, 4)
    assert interval.mean == pytest.approx(-0.2) and interval.dof == 4
    assert (interval.lower, interval.upper) == pytest.approx(
        (-0.2 - t_975_df4 * se, -0.2 + t_975_df4 * se)
    )
    assert interval_verdict(interval) == "inconclusive"
    assert interval_verdict(PairedInterval(-0.2, -0.3, -0.1, 4)) == "wins"
    assert interval_verdict(PairedInterval(0.2, 0.1, 0.3, 4)) == "loses"
    assert interval_verdict(PairedInterval(0.0, math.nan, math.nan, 0)) == "inconclusive"
    # an equivalence margin turns an interval inside [-m, m] into "equivalent", and only that
    assert interval_verdict(PairedInterval(0.0, -0.05, 0.04, 4), margin=0.1) == "equivalent"
    assert interval_verdict(PairedInterval(0.0, -0.15, 0.04, 4), margin=0.1) == "inconclusive"


def test_censored_median_counts_misses_as_slowest():
    assert censored_median(np.array([10.0, 20.0, np.nan])) == 20.0
    assert censored_median(np.array([10.0, np.nan, np.nan])) == math.inf
    assert censored_median(np.array([10.0, 30.0])) == 20.0


def _arm(label, validation, step_cost_value):
    runs = Trajectories(np.array([0, 1]), np.ones((2, 2, 2)), np.ones((2, 2, 1)), {})
    return ArmEvaluation(
        label,
        label,
        "adam",
        np.array([0, 5, 10]),
        {"validation_final_loss": validation},
        step_cost_value,
        1.0,
        runs,
    )


def test_common_level_is_reached_by_every_arm_at_its_own_compute():
    fast = _arm("fast", np.array([[2.0, 1.0, 0.5], [2.0, 1.2, 0.7]]), 10)  # means 2.0, 1.1, 0.6
    slow = _arm("slow", np.array([[2.0, 1.8, 1.0], [2.0, 1.6, 1.2]]), 30)  # means 2.0, 1.7, 1.1
    level = common_level([fast, slow])
    assert level == pytest.approx(1.1)
    assert inner_steps_to_level(fast, level) == (5, 50)
    assert inner_steps_to_level(slow, level) == (10, 300)
    assert inner_steps_to_level(slow, 0.1) == (-1, -1)


def test_arm_runs_round_trip_through_npz(tmp_path):
    run = ArmRun(
        {"lstm": {"w": np.arange(6.0).reshape(2, 3)}},
        np.array([0, 3]),
        {"validation_final_loss": np.ones((2, 2))},
        20,
        np.array([0, 1]),
        12.5,
    )
    run.save(tmp_path / "result.npz")
    back = ArmRun.load(tmp_path / "result.npz")
    np.testing.assert_array_equal(back.meta_params["lstm"]["w"], run.meta_params["lstm"]["w"])
    assert (back.step_cost, back.seconds, back.skipped.tolist()) == (20, 12.5, [0, 1])


@pytest.mark.slow
def test_ablation_end_to_end_writes_the_report_and_resumes(
    config_path, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "ablation"
    args = [
        "ablation",
        "--config",
        str(config_path),
        "--out",
        str(out),
        "--no-progress",
        "ablation.extra_teachers=[]",
    ]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    report = (out / "report.md").read_text()
    assert report in printed
    data = json.loads((out / "results.json").read_text())
    assert [row["arm"] for row in data["arms"]] == [
        "none",
        "chord",
    ]  # extra teachers: the unit tests above
    assert [row["meta_steps"] for row in data["arms"]] == [6, 3]
    rows = {
        row[0]: row
        for row in table_rows(report.split("## Paired")[0].split("Tuned baselines")[0])[1:]
    }
    for row in data["arms"]:  # the table shows results.json's numbers
        assert float(rows[row["arm"]][4].split("±")[0]) == pytest.approx(
            row["final_loss"][0], rel=5e-3
        )
    assert {(c["a"], c["b"]) for c in data["comparisons"]} == {("chord", "none")}
    pairs = data["imitation_pairs"]  # the chord arm alone imitates: all its pairs, none dropped
    assert pairs["arms"]["chord"]["dropped"] == [0, 0]  # one entry per meta-seed
    assert [pairs["common_pairs"]] * 2 == pairs["arms"]["chord"]["certified"]
    for k in range(2):  # each meta-seed its own teacher runs: the seeds' target sets differ
        assert (out / "arms" / "chord" / f"targets-{k}.npz").exists()
    from geodesic_targets.targets import TargetSet

    own = [TargetSet.load(out / "arms" / "chord" / f"targets-{k}.npz") for k in range(2)]
    assert not np.allclose(
        jax.tree_util.tree_leaves(own[0].targets)[0], jax.tree_util.tree_leaves(own[1].targets)[0]
    )
    assert f"the same {pairs['common_pairs']} pairs" in report
    assert data["baselines"][0]["baseline"] == "adam"
    for png in ("ablation_validation.png", "ablation_eval.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # every arm's W&B run logged its validation curve (mean over meta-seeds) at 0, and the last step
    (folder,) = (out / "arms" / "chord" / "wandb").glob("offline-run-*")
    logged = read_offline_run(folder)
    assert [h["_step"] for h in logged["history"] if "validation_final_loss" in h] == [0, 2, 3]
    assert logged["config"]["meta_train"]["supervision"] == "chord" and logged["exit_code"] == 0

    # the evaluation of meta-seed 1 equals evaluating that optimizer alone on the same seeds
    config = load_experiment(out / "config.yaml")
    arm_cfg = arm_config(config, ablation_arms(config)[1])
    run = ArmRun.load(out / "arms" / "chord" / "result.npz")
    from trainers.config.experiment import build_family

    family = build_family(config)
    _, held_out = evaluation_keys(config.seed, 0, 1, 3)
    together = learned_runs(arm_cfg, family, run, held_out, 10)
    one = jax.tree_util.tree_map(lambda x: x[1], run.meta_params)
    alone = run_grid(
        family, learned_contender("one", arm_cfg.meta_train.lstm, one).build, {}, held_out, 10, 5
    )
    np.testing.assert_allclose(together.curves[1], alone.curves[0], rtol=2e-5)
    # `meta-opt evaluate --checkpoint arm:<arm>@1` evaluates that same optimizer, config and all
    from trainers.io.checkpoint import CheckpointError
    from trainers.pipelines.learned_checkpoints import load_learned

    spec = f"arm:{out / 'arms' / 'chord'}@1"
    loaded = load_learned(spec, "chord_1")
    assert loaded.config == arm_cfg and loaded.step == 3
    for got, want in zip(
        jax.tree_util.tree_leaves(loaded.meta_params), jax.tree_util.tree_leaves(one)
    ):
        np.testing.assert_array_equal(got, want)
    for bad, message in (
        (f"{spec[:-2]}@2", "meta-seed 2 of an arm with 2"),
        (spec[:-2], "expected arm:"),
    ):
        with pytest.raises(CheckpointError, match=message):
            load_learned(bad)
    evaluated = tmp_path / "evaluate_arm"
    assert (
        cli.main(
            [
                "evaluate",
                "--checkpoint",
                f"chord_1={spec}",
                "--out",
                str(evaluated),
                "--no-progress",
            ]
        )
        == 0
    )
    (task,) = json.loads((evaluated / "results.json").read_text())
    (row,) = [o for o in task["optimizers"] if o["optimizer"] == "chord_1"]
    np.testing.assert_allclose(row["per_seed_final_loss"], alone.final_losses[0], rtol=2e-5)

    chord_row = data["arms"][1]  # results.json keeps each meta-seed's mean over evaluation seeds
    assert chord_row["final_loss_per_meta_seed"][1] == pytest.approx(
        float(np.mean(alone.final_losses)), rel=2e-5
    )
    assert np.mean(chord_row["final_loss_per_meta_seed"]) == pytest.approx(
        chord_row["final_loss"][0]
    )

    # a rerun reuses every finished arm: nothing is trained again, the same runs come back
    monkeypatch.setattr(
        ablation, "train_arm_in_blocks", lambda *a, **k: pytest.fail("a finished arm was retrained")
    )
    runs, skipped, pairs = ablation.trained_arms(config, out, progress=False)
    assert sorted(runs) == ["chord", "none"] and not skipped
    np.testing.assert_array_equal(
        runs["chord"][1].validation["validation_final_loss"],
        run.validation["validation_final_loss"],
    )
    # and so does a copy of the small files kept by configs/keep_ablation.sh (another session):
    # no target is made again for finished arms
    import shutil
    import subprocess

    from trainers.pipelines import ablation_pairs

    kept, copy = tmp_path / "kept", tmp_path / "copy"
    script = pathlib.Path(__file__).resolve().parents[1] / "configs" / "keep_ablation.sh"
    subprocess.run(["bash", str(script), str(out), str(kept)], check=True, capture_output=True)
    assert not list(kept.rglob("targets*.npz"))
    shutil.copytree(kept, copy)
    monkeypatch.setattr(
        ablation_pairs, "make_targets", lambda *a, **k: pytest.fail("targets were made again")
    )
    runs, _, pairs_again = ablation.trained_arms(config, copy, progress=False)
    assert sorted(runs) == ["chord", "none"] and pairs_again["kept_keys"] == pairs["kept_keys"]


def test_an_arm_folder_trained_with_other_settings_is_not_reused(config_path, tmp_path):
    from trainers.errors import RunError
    from trainers.pipelines.arm_records import check_reusable

    config = load_experiment(config_path)
    arm = arm_config(config, ablation_arms(config)[1])
    check_reusable(arm, tmp_path / "chord")  # records
    check_reusable(arm, tmp_path / "chord")  # same settings: fine
    check_reusable(
        dataclasses.replace(arm, evaluation=dataclasses.replace(arm.evaluation, seeds=9)),
        tmp_path / "chord",
    )  # evaluation settings do not decide the trained optimizers
    other = load_experiment(config_path, ["meta_train.outer.learning_rate=0.01"])
    with pytest.raises(RunError, match=r"meta_train\.outer\.learning_rate differ"):
        check_reusable(arm_config(other, ablation_arms(other)[1]), tmp_path / "chord")
    # a record made before a setting existed still matches while that setting keeps its default;
    # records from before task variation existed were trained without it, which the family's
    # default variation (on for digits) is not
    record = json.loads((tmp_path / "chord" / "arm.json").read_text())
    assert record["meta_train"]["task_variation"] == {
        "input_scale_range": [0.5, 2.0],
        "permute_labels": True,
    }
    del record["meta_train"]["task_variation"], record["meta_train"]["unroll"]["score_on"]
    (tmp_path / "chord" / "arm.json").write_text(json.dumps(record))
    with pytest.raises(RunError, match=r"meta_train\.task_variation differ"):
        check_reusable(arm, tmp_path / "chord")
    unvaried = load_experiment(config_path, ["meta_train.task_variation={}"])
    check_reusable(arm_config(unvaried, ablation_arms(unvaried)[1]), tmp_path / "chord")


class _Stop(Exception):
    """Raised by a test's on_step to stop an arm as a killed session would."""


def test_a_stopped_arm_resumes_from_its_checkpoint_bit_for_bit(config_path, tmp_path):
    from trainers.config.task_families import build_family
    from trainers.io.checkpoint import list_checkpoints
    from trainers.pipelines.arm_training import discard_checkpoints, train_arm

    config = load_experiment(config_path)
    arm = next(a for a in ablation_arms(config) if a.label == "none")
    arm_cfg = arm_config(config, arm)
    arm_cfg = dataclasses.replace(
        arm_cfg, meta_train=dataclasses.replace(arm_cfg.meta_train, checkpoint_every=1)
    )
    steps = arm_cfg.meta_train.num_meta_steps
    assert steps >= 3
    family = build_family(arm_cfg, training=True)
    whole = train_arm(arm_cfg, family, tmp_path / "whole", progress=False)

    def stop_at_two(step):
        if step == 2:
            raise _Stop

    stopped = tmp_path / "stopped"
    with pytest.raises(_Stop):
        train_arm(arm_cfg, family, stopped, progress=False, on_step=stop_at_two)
    assert [p.name for p in list_checkpoints(stopped)] == ["ckpt-00000002"]
    resumed = train_arm(arm_cfg, family, stopped, progress=False)
    for a, b in zip(
        jax.tree_util.tree_leaves(whole.meta_params), jax.tree_util.tree_leaves(resumed.meta_params)
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert whole.validation.keys() == resumed.validation.keys()
    for name in whole.validation:
        np.testing.assert_array_equal(whole.validation[name], resumed.validation[name])
    np.testing.assert_array_equal(whole.skipped, resumed.skipped)
    assert [p.name for p in list_checkpoints(stopped)] == [f"ckpt-{steps:08d}"]
    discard_checkpoints(stopped)
    assert list_checkpoints(stopped) == []


def test_an_arm_in_blocks_of_meta_seeds_equals_the_arm_at_once_and_goes_on_block_by_block(
    config_path, tmp_path
):
    from trainers.config.task_families import build_family
    from trainers.pipelines import ablation_pairs
    from trainers.pipelines.arm_blocks import train_arm_in_blocks
    from trainers.pipelines.arm_training import train_arm

    config = load_experiment(config_path, ["ablation.extra_teachers=[]"])
    family = build_family(config, training=True)
    arms = [
        (arm.label, arm_config(config, arm), ablation.arm_folder(tmp_path, arm))
        for arm in ablation_arms(config)
    ]
    ablation_pairs.common_pair_targets(arms, tmp_path, family, progress=False)
    _, chord_cfg, chord_folder = arms[1]
    at_once = train_arm(
        chord_cfg, family, tmp_path / "at_once", progress=False, targets_folder=chord_folder
    )
    blocked = dataclasses.replace(
        chord_cfg, ablation=dataclasses.replace(chord_cfg.ablation, seed_block=1)
    )
    assert blocked.ablation.seed_blocks() == [range(0, 1), range(1, 2)]
    prepared = []

    def stop_at_the_second_block(seeds):
        prepared.append(list(seeds))
        if seeds.start == 1:
            raise _Stop

    with pytest.raises(_Stop):  # a session ends after the first block
        train_arm_in_blocks(blocked, family, chord_folder, stop_at_the_second_block, progress=False)
    assert (chord_folder / "block-0" / "result.npz").exists()
    joined = train_arm_in_blocks(
        blocked, family, chord_folder, lambda seeds: prepared.append(list(seeds)), progress=False
    )
    assert prepared == [[0], [1], [1]]  # the finished block was not prepared or trained again
    for a, b in zip(
        jax.tree_util.tree_leaves(at_once.meta_params),
        jax.tree_util.tree_leaves(joined.meta_params),
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
    for name in at_once.validation:
        assert joined.validation[name].shape == at_once.validation[name].shape
        np.testing.assert_allclose(joined.validation[name], at_once.validation[name], rtol=1e-5)
    np.testing.assert_array_equal(joined.steps, at_once.steps)


def test_arms_named_on_the_command_line_train_alone_and_the_report_waits(
    config_path, tmp_path, capsys
):
    out = tmp_path / "ablation"
    args = ["ablation", "--config", str(config_path), "--out", str(out), "--no-progress"]
    args.append("ablation.extra_teachers=[]")
    assert cli.main([*args, "--arms", "none"]) == 0
    assert "trained arms: none; still to train: chord" in capsys.readouterr().out
    assert (out / "arms" / "none" / "result.npz").exists()
    assert not (out / "arms" / "chord" / "result.npz").exists()
    assert not (out / "report.md").exists()
    assert (out / "pairs.json").exists()  # every arm's pairs are drawn first, as without --arms
    assert cli.main([*args, "--arms", "none,teacher"]) == 2
    assert "no arm ['teacher'] in this ablation; its arms: none, chord" in capsys.readouterr().err
