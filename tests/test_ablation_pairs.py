"""Every arm of an ablation imitates the same pairs, each meta-seed its own draw; arm folders
from before that rule are trained again."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from trainers.config import load_experiment
from trainers.config.experiment import build_family
from trainers.pipelines import ablation_pairs
from trainers.pipelines.ablation import ablation_arms, arm_config
from trainers.pipelines.arm_records import check_reusable, supersede_old_arm
from trainers.pipelines.geodesics import make_targets

TINY = """\
name: tiny_pairs
task:
  name: digits_mlp
  options: {hidden_sizes: [8], batch_size: 32}
geodesics:
  baseline: {name: adam, hparams: {learning_rate: 0.1}}
  targets: {num_instances: 2, num_steps: 10, horizon: 5}
meta_train:
  num_instances: 2
  unroll: {horizon: 10, unroll_length: 5}
  lstm: {hidden_sizes: [4]}
  imitation_batch: 2
ablation:
  arms: [none, chord, teacher]
  meta_seeds: 2
logging: {mode: offline}
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return load_experiment(path)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Each stored-targets arm's full target set, made once for the module: label -> TargetSet."""
    path = tmp_path_factory.mktemp("pairs") / "tiny.yaml"
    path.write_text(TINY)
    config = load_experiment(path)
    family = build_family(config, training=True)
    return {
        arm.label: make_targets(arm_config(config, arm), family, progress=False)
        for arm in ablation_arms(config)
        if arm.label != "none"
    }


def made_by(generated, change=None, seeds=None):
    """A stand-in for make_targets returning the module's sets.

    `change(label, seed offset, set) -> set` edits one arm's set at one meta-seed; `seeds`
    (a list) collects the seeds asked for.
    """

    def make(cfg, fam, progress=True):
        label = cfg.meta_train.supervision
        if seeds is not None:
            seeds.append((label, cfg.seed))
        full = generated[label]
        return change(label, cfg.seed, full) if change else full

    return make


def _without_first(full, count=1):
    return dataclasses.replace(
        full.subset(full.pair_keys()[count:]), num_dropped=0, num_uncertified=count
    )


def arms_of(config, folder):
    return [
        (arm.label, arm_config(config, arm), folder / "arms" / arm.label)
        for arm in ablation_arms(config)
    ]


def test_two_arms_get_identical_pair_lists_and_the_report_says_what_was_dropped(
    config, tmp_path, monkeypatch, generated
):
    # the teacher arm as if one of its pairs had failed to certify: the chord arm must drop it too
    fewer = lambda label, seed, full: _without_first(full) if label == "teacher" else full
    asked = []
    monkeypatch.setattr(ablation_pairs, "make_targets", made_by(generated, fewer, asked))
    summary = ablation_pairs.common_pair_targets(
        arms_of(config, tmp_path), tmp_path, None, progress=False
    )
    from geodesic_targets.targets import TargetSet

    # each meta-seed k of every arm asked for its own draw, from seed + k
    assert sorted(asked) == [("chord", 0), ("chord", 1), ("teacher", 0), ("teacher", 1)]
    for k in range(2):
        chord = TargetSet.load(tmp_path / "arms" / "chord" / ablation_pairs.targets_name(k))
        teacher = TargetSet.load(tmp_path / "arms" / "teacher" / ablation_pairs.targets_name(k))
        full = TargetSet.load(tmp_path / "arms" / "chord" / ablation_pairs.generated_name(k))
        assert len(full.levels) == 4
        assert chord.pair_keys() == teacher.pair_keys() == full.pair_keys()[1:]
        assert (chord.path, teacher.path) == ("chord", "teacher")
        assert (chord.num_dropped, teacher.num_dropped) == (1, 0)
    np.testing.assert_array_equal(chord.start_steps, full.start_steps[1:])
    np.testing.assert_array_equal(
        np.asarray(chord.targets["mlp/~/linear_0"]["w"]),
        np.asarray(full.targets["mlp/~/linear_0"]["w"])[1:],
    )
    assert summary["common_pairs"] == 3 and summary["common_per_meta_seed"] == [3, 3]
    assert "none" not in summary["arms"]
    assert summary["arms"]["chord"]["dropped"] == [1, 1]
    assert summary["arms"]["teacher"]["dropped"] == [0, 0]
    assert json.loads((tmp_path / "pairs.json").read_text()) == summary
    notes = ablation_pairs.pair_notes(summary)
    assert "same 3 pairs" in notes[0] and any(
        "`chord`, per meta-seed: 4 certified" in line and "1 dropped" in line for line in notes
    )


def test_every_meta_seed_keeps_as_many_pairs_as_the_poorest(
    config, tmp_path, monkeypatch, generated
):
    # meta-seed 1's teacher certifies two pairs fewer: both meta-seeds keep 2 pairs, their first
    fewer = lambda label, seed, full: (
        _without_first(full, 2) if (label, seed) == ("teacher", 1) else full
    )
    monkeypatch.setattr(ablation_pairs, "make_targets", made_by(generated, fewer))
    summary = ablation_pairs.common_pair_targets(
        arms_of(config, tmp_path), tmp_path, None, progress=False
    )
    from geodesic_targets.targets import TargetSet

    assert summary["common_per_meta_seed"] == [4, 2] and summary["common_pairs"] == 2
    full = generated["chord"].pair_keys()
    seed_0 = TargetSet.load(tmp_path / "arms" / "chord" / ablation_pairs.targets_name(0))
    seed_1 = TargetSet.load(tmp_path / "arms" / "teacher" / ablation_pairs.targets_name(1))
    assert seed_0.pair_keys() == full[:2] and seed_1.pair_keys() == full[2:]
    assert summary["arms"]["chord"]["dropped"] == [2, 2]
    assert "4/2 certified" in "\n".join(ablation_pairs.pair_notes(summary))


def test_an_arm_without_any_certified_pair_is_named_and_the_rest_keep_theirs(
    config, tmp_path, monkeypatch, generated
):
    from geodesic_targets.targets import NoCertifiedPairs

    def none_for_teacher(label, seed, full):
        if label == "teacher":
            raise NoCertifiedPairs(
                "no pair was certified (4 failed path searches, 0 not descending)"
            )
        return full

    monkeypatch.setattr(ablation_pairs, "make_targets", made_by(generated, none_for_teacher))
    summary = ablation_pairs.common_pair_targets(
        arms_of(config, tmp_path), tmp_path, None, progress=False
    )
    assert "no pair was certified" in summary["arms"]["teacher"]["why_none"]
    assert summary["common_pairs"] == 4
    assert (tmp_path / "arms" / "chord" / ablation_pairs.targets_name(1)).exists()


def test_an_arm_folder_from_before_common_pairs_is_moved_aside_and_trained_again(config, tmp_path):
    label, arm_cfg, folder = arms_of(config, tmp_path)[1]
    check_reusable(arm_cfg, folder)  # records, with the pairs mark
    assert supersede_old_arm(arm_cfg, folder) is None  # a current record stays
    record = json.loads((folder / "arm.json").read_text())
    del record["pairs"]
    (folder / "arm.json").write_text(json.dumps(record))
    (folder / "result.npz").write_bytes(b"an old result")
    moved = supersede_old_arm(arm_cfg, folder)
    assert (
        moved == folder.with_name("chord.before-common-pairs") and (moved / "result.npz").exists()
    )
    assert not folder.exists()
    none_label, none_cfg, none_folder = arms_of(config, tmp_path)[
        0
    ]  # the loss-only arm imitates nothing
    check_reusable(none_cfg, none_folder)
    assert "pairs" not in json.loads((none_folder / "arm.json").read_text())
    assert supersede_old_arm(none_cfg, none_folder) is None


def test_an_arm_loads_one_stacked_target_set_per_meta_seed(
    config, tmp_path, monkeypatch, generated
):
    from trainers.errors import RunError
    from trainers.pipelines.arm_training import meta_seed_targets

    arms = arms_of(config, tmp_path)
    assert meta_seed_targets(arms[0][1], arms[0][2]) is None  # the loss-only arm stores none
    label, chord_cfg, chord_folder = arms[1]
    with pytest.raises(RunError, match="targets-0.npz"):
        meta_seed_targets(chord_cfg, chord_folder)
    fewer = lambda label, seed, full: _without_first(full) if seed == 1 else full
    monkeypatch.setattr(ablation_pairs, "make_targets", made_by(generated, fewer))
    ablation_pairs.common_pair_targets(arms, tmp_path, None, progress=False)
    stacked = meta_seed_targets(chord_cfg, chord_folder)
    from geodesic_targets.targets import TargetSet

    own = [TargetSet.load(chord_folder / ablation_pairs.targets_name(k)) for k in range(2)]
    assert stacked.instance_keys.shape[:2] == (2, 3)  # K = 2 meta-seeds x the 3 common pairs
    np.testing.assert_array_equal(np.asarray(stacked.instance_keys[1]), own[1].instance_keys)
    np.testing.assert_array_equal(
        np.asarray(stacked.start["mlp/~/linear_0"]["w"][0]),
        np.asarray(own[0].start_params["mlp/~/linear_0"]["w"]),
    )


def test_a_rerun_from_the_small_files_makes_an_arms_targets_when_it_trains_at_the_recorded_pairs(
    config, tmp_path, monkeypatch, generated
):
    from geodesic_targets.targets import TargetSet
    from trainers.errors import RunError

    fewer = lambda label, seed, full: _without_first(full) if label == "teacher" else full
    monkeypatch.setattr(ablation_pairs, "make_targets", made_by(generated, fewer))
    arms = arms_of(config, tmp_path)
    first = ablation_pairs.common_pair_targets(arms, tmp_path, None, progress=False)
    assert first["stored_arms"] == ["chord", "teacher"]
    teacher = tmp_path / "arms" / "teacher"
    kept = [TargetSet.load(teacher / ablation_pairs.targets_name(k)) for k in range(2)]
    assert first["kept_keys"] == [[list(key) for key in s.pair_keys()] for s in kept]
    for path in (tmp_path / "arms").glob("*/targets*.npz"):  # a clone holds the small files only
        path.unlink()
    asked = []
    monkeypatch.setattr(ablation_pairs, "make_targets", made_by(generated, fewer, asked))
    again = ablation_pairs.common_pair_targets(arms, tmp_path, None, progress=False)
    assert again == first and asked == []  # the choice is recorded: nothing made up front
    ablation_pairs.recorded_pair_targets(
        arms[2][1], teacher, again, None, progress=False, meta_seeds=range(1, 2)
    )
    assert asked == [("teacher", 1)]  # a block of meta-seeds: only its own
    ablation_pairs.recorded_pair_targets(arms[2][1], teacher, again, None, progress=False)
    assert sorted(asked) == [("teacher", 0), ("teacher", 1)]  # only the arm about to train
    assert not list((tmp_path / "arms" / "chord").glob("targets*.npz"))
    for k in range(2):
        made = TargetSet.load(teacher / ablation_pairs.targets_name(k))
        assert made.pair_keys() == kept[k].pair_keys()
        np.testing.assert_array_equal(made.start_steps, kept[k].start_steps)
    ablation_pairs.recorded_pair_targets(arms[2][1], teacher, again, None, progress=False)
    assert len(asked) == 2  # present targets are not made again
    # a regenerated set without a recorded pair is not the set the other arms trained on
    monkeypatch.setattr(
        ablation_pairs,
        "make_targets",
        made_by(generated, lambda label, seed, full: _without_first(full, 2)),
    )
    with pytest.raises(RunError, match="lack pairs that pairs.json records"):
        ablation_pairs.recorded_pair_targets(arms[1][1], tmp_path / "arms" / "chord", again, None)


class _Stop(Exception):
    """A session ending during target generation."""


def test_a_stop_during_generation_loses_only_the_meta_seed_in_progress(
    config, tmp_path, monkeypatch, generated
):
    fewer = lambda label, seed, full: _without_first(full) if label == "teacher" else full
    monkeypatch.setattr(ablation_pairs, "make_targets", made_by(generated, fewer))
    whole = ablation_pairs.common_pair_targets(
        arms_of(config, tmp_path / "whole"), tmp_path / "whole", None, progress=False
    )

    def stop_at_teacher_1(label, seed, full):
        if (label, seed) == ("teacher", 1):
            raise _Stop
        return fewer(label, seed, full)

    folder = tmp_path / "stopped"
    monkeypatch.setattr(ablation_pairs, "make_targets", made_by(generated, stop_at_teacher_1))
    with pytest.raises(_Stop):
        ablation_pairs.common_pair_targets(arms_of(config, folder), folder, None, progress=False)
    record = json.loads((folder / ablation_pairs.PROGRESS).read_text())
    assert len(record["meta_seeds"]) == 1 and not (folder / "pairs.json").exists()
    for path in (folder / "arms").glob("*/targets*.npz"):  # the next session has the record only
        path.unlink()
    asked = []
    monkeypatch.setattr(ablation_pairs, "make_targets", made_by(generated, fewer, asked))
    summary = ablation_pairs.common_pair_targets(
        arms_of(config, folder), folder, None, progress=False
    )
    assert sorted(asked) == [("chord", 1), ("teacher", 1)]  # meta-seed 0 is not drawn again
    assert summary == whole


def test_shortening_outcomes_are_recorded_per_meta_seed_and_summed_up_in_the_report(tmp_path):
    from types import SimpleNamespace

    from trainers.reporting.ablation_notes import convergence_notes

    nan = float("nan")
    fields = dict(unshortened_lengths=np.array([1.8, 2.2]))
    shortened = [  # meta-seed 0: one pair at the cap, one converged; meta-seed 1: both converged
        SimpleNamespace(
            normalized_lengths=np.array([1.04, 1.001]),
            converged=np.array([0.0, 1.0]),
            shortening_rounds=np.array([200.0, 14.0]),
            convergence_criteria=np.array([9e-5, 4e-6]),
            **fields,
        ),
        SimpleNamespace(
            normalized_lengths=np.array([1.02, 1.0]),
            converged=np.array([1.0, 1.0]),
            shortening_rounds=np.array([30.0, 5.0]),
            convergence_criteria=np.array([8e-6, 1e-7]),
            **fields,
        ),
    ]
    chords = SimpleNamespace(  # not shortened: nan rounds, no line in the report
        normalized_lengths=np.ones(2),
        converged=np.full(2, nan),
        shortening_rounds=np.full(2, nan),
        convergence_criteria=np.full(2, nan),
        unshortened_lengths=np.full(2, nan),
    )
    for k, targets in enumerate(shortened):
        ablation_pairs.record_convergence(tmp_path / "short", k, targets)
        ablation_pairs.record_convergence(tmp_path / "chord", k, chords)
    saved = json.loads((tmp_path / "short" / ablation_pairs.CONVERGENCE).read_text())
    assert sorted(saved) == ["0", "1"] and saved["0"]["shortening_rounds"] == [200.0, 14.0]
    arms = [("chord", tmp_path / "chord"), ("short", tmp_path / "short"), ("gone", tmp_path)]
    (line,) = convergence_notes(arms, ablation_pairs.CONVERGENCE)
    assert line.startswith("- `short` imitates shortened paths: 3 of 4 (over 2 meta-seeds)")
    assert "the other 1 stopped at the round cap (200 rounds)" in line
    assert "change of 9.0e-05 (median; largest 9.0e-05)" in line
    assert line.endswith("normalized lengths 1.000-1.040 (mean 1.015).")
