"""configs/keep_train_run.sh: a stopped run, kept, committed, cloned and resumed, equals the whole run."""

from __future__ import annotations

import json
import pathlib
import subprocess

import jax
import numpy as np
import pytest

from trainers.commands import cli
from trainers.config import save_config
from trainers.config.experiment import load_experiment
from trainers.io.checkpoint import list_checkpoints, load_checkpoint
from trainers.pipelines import train as meta_train

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "configs" / "keep_train_run.sh"
TINY = """\
name: tiny
task: {name: quadratic}
meta_train:
  num_meta_steps: 6
  num_instances: 2
  unroll: {horizon: 8, unroll_length: 4}
  lstm: {hidden_sizes: [4]}
  checkpoint_every: 2
logging: {mode: disabled}
"""

pytestmark = pytest.mark.slow  # meta-trains three short runs


class _Stop(Exception):
    """Stands for the end of a session: the process ends after meta-step 5."""


def _stop_after_five(step: int, metrics) -> None:
    if step == 5:
        raise _Stop


def _git(*args: str, cwd: pathlib.Path) -> None:
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    subprocess.run(["git", *identity, *args], cwd=cwd, check=True, capture_output=True)


def _rows(run: pathlib.Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "inner_steps_per_second"} for row in rows]


def test_a_kept_run_resumes_in_another_clone_bit_for_bit(tmp_path):
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(TINY)
    config = load_experiment(config_path)
    whole = tmp_path / "whole"
    meta_train.train(config, whole, progress=False)
    stopped = tmp_path / "stopped"
    save_config(config, stopped / "config.yaml")  # as `meta-opt train` writes it
    with pytest.raises(_Stop):
        meta_train.train(config, stopped, progress=False, on_step=_stop_after_five)
    assert [p.name for p in list_checkpoints(stopped)][-1] == "ckpt-00000004"

    repo = tmp_path / "repo"
    repo.mkdir()
    _git("init", "-q", cwd=repo)
    kept = repo / "checkpoints" / "tiny"
    done = subprocess.run(
        ["bash", str(SCRIPT), str(stopped), str(kept)], check=True, capture_output=True, text=True
    )
    assert "at meta-step 4" in done.stdout
    assert [p.name for p in list_checkpoints(kept)] == ["ckpt-00000004"]  # the newest alone
    assert [row["step"] for row in _rows(kept)] == [1, 2, 3, 4]  # step 5 was never checkpointed
    _git("add", "-f", "checkpoints", cwd=repo)
    _git("commit", "-q", "-m", "keep the run", cwd=repo)
    clone = tmp_path / "clone"
    _git("clone", "-q", str(repo), str(clone), cwd=tmp_path)

    resumed = tmp_path / "resumed"
    subprocess.run(["cp", "-r", str(clone / "checkpoints" / "tiny"), str(resumed)], check=True)
    assert cli.main(["train", "--resume", str(resumed), "--no-progress"]) == 0

    like = meta_train.initial_meta_state(config, meta_train.build_family(config, training=True))
    a, _ = load_checkpoint(list_checkpoints(whole)[-1], like)
    b, _ = load_checkpoint(list_checkpoints(resumed)[-1], like)
    assert int(a.step) == int(b.step) == 6
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert _rows(resumed) == _rows(whole)


def test_a_folder_without_a_run_or_a_checkpoint_is_refused(tmp_path):
    missing = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "nothing"), str(tmp_path / "kept")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "no config.yaml" in missing.stderr
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("name: x\n")
    empty = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "run"), str(tmp_path / "kept")],
        capture_output=True,
        text=True,
    )
    assert empty.returncode == 2 and "no checkpoint" in empty.stderr
