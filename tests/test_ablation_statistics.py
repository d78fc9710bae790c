"""The ablation's decisive statistics on synthetic per-meta-seed numbers.

Declared primary comparisons, Holm within families, equivalence by TOST, the negative
control, the power statement and the fresh evaluation seed stream, each checked against
p-values and verdicts computed here independently (scipy's paired t-test, Holm by hand).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from tests.markdown import table_rows
from trainers.config import ConfigError, load_experiment
from trainers.core.trajectories import Trajectories
from trainers.evaluation.evaluate import ContenderResult, TaskResult
from trainers.pipelines.ablation import seed_stream_note
from trainers.reporting.ablation_report import (
    ArmEvaluation,
    comparisons,
    write_ablation_report,
)

K = 8  # meta-seeds
RNG = np.random.default_rng(0)
BASE = 1.0 + 0.1 * RNG.normal(size=K)  # the seeds' shared difficulty: pairing removes it
NOISE = {name: 0.01 * RNG.normal(size=K) for name in ("none", "teacher", "chord", "geodesic")}
SHIFT = {"none": 0.2, "teacher": 0.0, "chord": 0.001, "geodesic": -0.05}


def _per_seed(label: str) -> np.ndarray:
    return BASE + SHIFT[label] + NOISE[label]


def _arm(label: str, per_seed: np.ndarray | None = None) -> ArmEvaluation:
    """An arm whose K optimizers have these final losses on two evaluation seeds."""
    values = _per_seed(label) if per_seed is None else per_seed
    final = np.stack([values - 0.01, values + 0.01], axis=1)  # [K, E = 2], mean = values
    curves = np.stack([final + 1.0, final], axis=-1)  # [K, E, P = 2]
    runs = Trajectories(np.array([0, 10]), curves, np.ones((K, 2, 10)), {})
    return ArmEvaluation(
        label,
        label,
        "adam",
        np.array([0, 5]),
        {"validation_final_loss": np.ones((K, 2))},
        10,
        1.0,
        runs,
    )


ARMS = [_arm(label) for label in ("none", "teacher", "chord", "geodesic")]
PRIMARY = ("geodesic:chord", "geodesic:teacher")
SECONDARY = ("chord:none", "teacher:none", "geodesic:none")


def _p(a: str, b: str) -> float:
    return stats.ttest_rel(_per_seed(a), _per_seed(b)).pvalue


def _by_pair(rows):
    return {(r["a"], r["b"]): r for r in rows if r["metric"] == "final_loss"}


def test_primary_comparisons_are_holm_adjusted_among_themselves_only():
    rows = _by_pair(comparisons(ARMS, SECONDARY, primary=PRIMARY, margin=0.05))
    raw = [_p(*pair.split(":")) for pair in PRIMARY]
    small = min(raw)  # Holm with two tests: the smaller p doubled, the larger at least that
    expected = [min(1.0, 2 * small) if p == small else min(1.0, max(2 * small, p)) for p in raw]
    for pair, p, adjusted in zip(PRIMARY, raw, expected):
        row = rows[tuple(pair.split(":"))]
        assert row["family"] == "primary" and row["family_size"] == 2
        assert row["p"] == pytest.approx(p, rel=1e-9)
        assert row["p_adjusted"] == pytest.approx(adjusted, rel=1e-9)
    assert rows[("geodesic", "chord")]["verdict"] == "wins"  # -0.051 with 0.014 spread


def test_other_comparisons_are_one_family_per_metric():
    rows = _by_pair(comparisons(ARMS, SECONDARY, primary=PRIMARY))
    raw = np.array([_p(*pair.split(":")) for pair in SECONDARY])
    order = np.argsort(raw)
    adjusted = np.maximum.accumulate(raw[order] * (len(raw) - np.arange(len(raw))))
    by_hand = np.empty_like(raw)
    by_hand[order] = np.minimum(adjusted, 1.0)
    for pair, p in zip(SECONDARY, by_hand):
        row = rows[tuple(pair.split(":"))]
        assert (row["family"], row["family_size"]) == ("secondary", 3)
        assert row["p_adjusted"] == pytest.approx(p, rel=1e-9)
        assert row["verdict"] == "wins"  # every arm is 0.15-0.25 below none


def test_a_pair_declared_primary_is_not_counted_again_among_the_others():
    rows = comparisons(ARMS, ("geodesic:chord", "chord:none"), primary=("geodesic:chord",))
    families = [(r["a"], r["b"], r["family"]) for r in rows if r["metric"] == "final_loss"]
    assert families == [("geodesic", "chord", "primary"), ("chord", "none", "secondary")]


def test_equivalence_margin_turns_a_tiny_difference_into_equivalent():
    # chord and teacher differ by 0.001 + noise of 0.014 spread; ±5% of ~1.0 is ±0.05
    with_margin = _by_pair(comparisons(ARMS, ("chord:teacher",), margin=0.05))
    without = _by_pair(comparisons(ARMS, ("chord:teacher",)))
    row = with_margin[("chord", "teacher")]
    diff = _per_seed("chord") - _per_seed("teacher")
    m = 0.05 * float(np.mean(_per_seed("teacher")))
    tost = max(
        stats.ttest_1samp(diff, -m, alternative="greater").pvalue,
        stats.ttest_1samp(diff, m, alternative="less").pvalue,
    )
    assert row["margin"] == pytest.approx(m)
    assert row["p_equivalence_adjusted"] == pytest.approx(tost, rel=1e-9)  # a family of one
    assert row["verdict"] == "equivalent"
    assert without[("chord", "teacher")]["verdict"] == "inconclusive"
    assert math.isnan(without[("chord", "teacher")]["margin"])


def test_power_statement_is_the_effect_found_with_80_percent_power():
    row = _by_pair(comparisons(ARMS, (), primary=PRIMARY))[("geodesic", "chord")]
    sd = np.std(_per_seed("geodesic") - _per_seed("chord"), ddof=1)
    rng = np.random.default_rng(1)
    diffs = row["detectable"] + sd * rng.normal(size=(20000, K))
    rejected = stats.ttest_1samp(diffs, 0.0, axis=1).pvalue < 0.05 / 2  # family of 2
    assert np.mean(rejected) == pytest.approx(0.8, abs=0.015)


def test_negative_control_is_its_own_family_of_one():
    jitter = 1e-4 * np.random.default_rng(2).normal(size=K)  # arms that should not differ
    twin = dataclasses.replace(
        _arm("chord", _per_seed("chord") + jitter), label="geodesic", supervision="geodesic"
    )
    rows = _by_pair(
        comparisons(
            [*ARMS[:3], twin],
            SECONDARY,
            primary=("chord:teacher",),
            negative_control="geodesic:chord",
        )
    )
    control = rows[("geodesic", "chord")]
    assert (control["family"], control["family_size"]) == ("control", 1)
    assert control["p_adjusted"] == pytest.approx(control["p"])
    assert control["sd"] == pytest.approx(
        np.std(twin.final_losses.mean(1) - _per_seed("chord"), ddof=1)
    )
    assert control["verdict"] in ("inconclusive", "equivalent")
    assert control["detectable"] < 1e-3  # the noise floor: a tenth of a percent of the loss


def test_divergence_verdicts_come_before_the_tests():
    diverged = _arm("none", np.where(np.arange(K) == 0, np.inf, _per_seed("none")))
    rows = _by_pair(comparisons([diverged, *ARMS[1:]], ("none:teacher", "teacher:none")))
    assert rows[("none", "teacher")]["verdict"] == "diverges"
    assert rows[("teacher", "none")]["verdict"] == "wins"
    assert math.isnan(rows[("teacher", "none")]["p"])


def _tuned():
    runs = Trajectories(np.array([0, 10]), np.ones((1, 2, 2)), np.ones((1, 2, 10)), {})
    return TaskResult("digits_mlp", "digits_mlp", 10, (ContenderResult("adam", False, runs),), 1.0)


def test_report_opens_with_the_primary_question_and_shows_the_noise_floor(tmp_path):
    data = write_ablation_report(
        ARMS,
        _tuned(),
        tmp_path,
        SECONDARY,
        primary=PRIMARY,
        negative_control="chord:teacher",
        margin=0.05,
    )
    report = (tmp_path / "report.md").read_text()
    assert report.index("## Primary question") < report.index("meta-seeds per arm")
    assert report.index("## Other paired comparisons") < report.index("## Noise floor")
    primary_table = report.split("## Primary question")[1].split("meta-seeds per arm")[0]
    rows = {row[0]: row for row in table_rows(primary_table)[1:]}
    assert set(rows) == {"geodesic vs chord", "geodesic vs teacher"}
    by_pair = _by_pair(data["comparisons"])
    for (a, b), c in by_pair.items():
        if c["family"] == "primary":
            row = rows[f"{a} vs {b}"]
            assert row[-1] == c["verdict"]
            assert f"of {c['family_size']}" in row[5]
    control = report.split("## Noise floor")[1]
    assert "chord vs teacher" in control and "equivalent" in control
    assert data["primary"] == list(PRIMARY) and data["equivalence_margin"] == 0.05


CONFIG = """\
name: stats_check
task: {name: digits_mlp}
ablation:
  arms: [none, chord, geodesic]
  primary: ["geodesic:chord"]
"""


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "ablation.yaml"
    path.write_text(CONFIG)
    return path


@pytest.mark.parametrize(
    "override, message",
    [
        ("ablation.primary=[geodesic]", "arm:arm"),
        ("ablation.primary=[teacher:chord]", "not in `arms`"),
        ("ablation.negative_control=endpoint:chord", "not in `arms`"),
        ("ablation.equivalence_margin=-0.1", "equivalence_margin"),
        ("ablation.confirmatory=true", "fresh stream"),
    ],
)
def test_bad_statistics_settings_are_config_errors(config_path, override, message):
    with pytest.raises(ConfigError, match=message):
        load_experiment(config_path, [override])


def test_confirmatory_runs_name_their_fresh_seed_stream(config_path):
    with pytest.raises(ConfigError, match="ablation.confirmatory"):
        load_experiment(config_path, ["ablation.confirmatory=true", "evaluation.seed=0"])
    fresh = load_experiment(config_path, ["ablation.confirmatory=true", "evaluation.seed=1001"])
    assert "`evaluation.seed` = 1001 (confirmatory)" in seed_stream_note(fresh)
    assert "exploratory" in seed_stream_note(load_experiment(config_path))
