"""Meta-training: it learns, it imitates, it survives NaN, kills and corrupt checkpoints."""

from __future__ import annotations

import json
import pathlib
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tasks
from tasks.base import Task, TaskFamily
from tests.host_devices import host_devices_env
from tests.wandb_offline import read_offline_run
from trainers.commands import cli
from trainers.config.experiment import load_experiment
from trainers.io.checkpoint import list_checkpoints, load_checkpoint
from trainers.pipelines import train as meta_train

TINY = """\
name: tiny
task: {name: digits_mlp}
meta_train:
  num_meta_steps: %(steps)d
  num_instances: 4
  unroll: {horizon: 20, unroll_length: 5}
  lstm: {hidden_sizes: [8]}
  outer: {learning_rate: 0.003}
  checkpoint_every: %(every)d
logging: {mode: %(mode)s}
"""


pytestmark = pytest.mark.slow  # every test here meta-trains or starts subprocesses


def write_config(tmp_path, steps=6, every=2, mode="disabled") -> pathlib.Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY % {"steps": steps, "every": every, "mode": mode})
    return path


def run_losses(config, run_dir, key="meta_loss"):
    losses = []
    meta_train.train(config, run_dir, progress=False, on_step=lambda i, m: losses.append(m[key]))
    return np.array(losses)


def test_meta_training_lowers_the_meta_loss(tmp_path):
    config = load_experiment(write_config(tmp_path), ["meta_train.num_meta_steps=40"])
    losses = run_losses(config, tmp_path / "run")
    assert np.all(np.isfinite(losses))
    assert losses[-8:].mean() < 0.8 * losses[:8].mean(), losses


def test_geodesic_supervision_lowers_the_imitation_loss(tmp_path):
    overrides = [
        "meta_train.num_meta_steps=30",
        "meta_train.imitation_weight=1.0",
        "geodesics.targets.num_instances=2",
        "geodesics.targets.num_steps=10",
        "geodesics.targets.horizon=5",
        "geodesics.connect.max_depth=3",
        "geodesics.connect.max_steps=200",
    ]
    config = load_experiment(write_config(tmp_path), overrides)
    losses = run_losses(config, tmp_path / "run", key="imitation_loss")
    assert (tmp_path / "run" / "targets.npz").exists()  # generated on the fly, then reused
    assert losses[-6:].mean() < 0.8 * losses[:6].mean(), losses


def test_cli_run_leaves_a_wandb_offline_run_and_metrics(tmp_path, monkeypatch):
    for name in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NETRC", str(tmp_path / "home" / ".netrc"))
    out = tmp_path / "run"
    config = write_config(tmp_path, steps=3, every=3, mode="auto")
    assert cli.main(["train", "--config", str(config), "--out", str(out), "--no-progress"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    keys = {
        "meta_loss",
        "imitation_loss",
        "inner_loss",
        "meta_grad_norm",
        "skipped_steps",
        "inner_steps_per_second",
    }
    assert [r["step"] for r in rows] == [1, 2, 3] and keys <= set(rows[0])
    (folder,) = (out / "wandb").glob("offline-run-*")
    logged = read_offline_run(folder)
    assert len(logged["history"]) == 3 and keys <= set(logged["history"][0])
    np.testing.assert_allclose(
        [r["meta_loss"] for r in logged["history"]], [r["meta_loss"] for r in rows], rtol=1e-6
    )
    assert logged["config"]["meta_train"]["num_instances"] == 4


def _meta_params(run_dir: pathlib.Path, config_path: pathlib.Path):
    config = load_experiment(config_path)
    like = meta_train.initial_meta_state(config, tasks.get_family("digits_mlp"))
    state, _ = load_checkpoint(list_checkpoints(run_dir)[-1], like)
    return state


def test_killed_run_resumes_bitwise(tmp_path):
    """Only the killed run needs a process of its own: the whole run and the resume run here."""
    config = write_config(tmp_path, steps=40, every=1)
    train = [sys.executable, "-m", "trainers.commands.cli", "train", "--no-progress"]
    whole = tmp_path / "whole"
    assert cli.main(["train", "--config", str(config), "--out", str(whole), "--no-progress"]) == 0
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        train + ["--config", str(config), "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not any(int(p.name.split("-")[1]) >= 3 for p in list_checkpoints(killed)):
        assert time.time() < deadline and process.poll() is None, "run ended before it was killed"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stopped_at = int(list_checkpoints(killed)[-1].name.split("-")[1])
    assert stopped_at < 40
    assert cli.main(["train", "--resume", str(killed), "--no-progress"]) == 0
    a, b = _meta_params(whole, config), _meta_params(killed, config)
    assert int(a.step) == int(b.step) == 40
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_corrupt_checkpoint_is_named_and_the_previous_one_still_works(tmp_path, capsys):
    config, run = write_config(tmp_path, steps=4, every=2), tmp_path / "run"
    assert cli.main(["train", "--config", str(config), "--out", str(run), "--no-progress"]) == 0
    newest = list_checkpoints(run)[-1]
    state_file = newest / "state.npz"
    state_file.write_bytes(state_file.read_bytes()[:100])  # truncated
    assert (
        cli.main(["train", "--resume", str(run), "meta_train.num_meta_steps=6", "--no-progress"])
        == 2
    )
    err = capsys.readouterr().err
    assert str(newest) in err and "ckpt-00000002" in err and "Traceback" not in err
    newest.rename(tmp_path / "moved-away")
    assert (
        cli.main(["train", "--resume", str(run), "meta_train.num_meta_steps=6", "--no-progress"])
        == 0
    )
    assert list_checkpoints(run)[-1].name == "ckpt-00000006"


def nan_prone_family() -> TaskFamily:
    """A quadratic whose minibatch loss is NaN on about one batch in six."""

    def make_task(key):
        target = jax.random.normal(key, (5,))
        loss = lambda p, batch: jnp.where(batch["bad"], jnp.nan, jnp.sum((p["x"] - target) ** 2))
        return Task(
            "nan_quadratic",
            lambda k: {"x": jax.random.normal(k, (5,))},
            loss,
            lambda k: {"bad": jax.random.uniform(k) < 0.03},
            lambda p: jnp.sum((p["x"] - target) ** 2),
        )

    return TaskFamily("nan_quadratic", None, make_task)


def test_nan_task_is_skipped_counted_and_never_checkpointed(tmp_path, monkeypatch):
    monkeypatch.setattr(
        meta_train, "build_family", lambda config, training=False: nan_prone_family()
    )
    config = load_experiment(write_config(tmp_path, steps=12, every=4))
    metrics = []
    state = meta_train.train(
        config, tmp_path / "run", progress=False, on_step=lambda i, m: metrics.append(m)
    )
    skipped = int(state.skipped)
    assert skipped > 0 and int(state.step) == 12
    assert skipped == sum(not np.isfinite(m["meta_loss"]) for m in metrics)
    assert metrics[-1]["skipped_steps"] == skipped
    like = meta_train.initial_meta_state(config, nan_prone_family())
    saved, _ = load_checkpoint(list_checkpoints(tmp_path / "run")[-1], like)
    assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(saved.meta_params))
    assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(saved.inner.params))


TWO_DEVICES = """
import sys, jax, numpy as np
from trainers.config.experiment import load_experiment
from trainers.pipelines import train as meta_train
config = load_experiment(sys.argv[1])
first = {}
meta_train.train(config, sys.argv[2], progress=False,
                 on_step=lambda step, metrics: first.setdefault("metrics", metrics))
m = first["metrics"]
np.savez(sys.argv[3], n=len(jax.devices()), meta_loss=m["meta_loss"], loss_term=m["loss_term"],
         meta_grad_norm=m["meta_grad_norm"], inner_loss=m["inner_loss"])
"""


def test_two_host_devices_give_the_same_meta_loss_and_meta_gradient(tmp_path):
    """The mean over instances split across devices equals the mean on one device.

    Compares the first meta-step's meta-loss, loss term and meta-gradient norm: a
    cross-device sum instead of a mean would double the loss and the gradient norm.
    """
    config = write_config(tmp_path, steps=1, every=1)
    results = []
    for devices in (1, 2):
        env = host_devices_env(devices)
        out = tmp_path / f"metrics{devices}.npz"
        subprocess.run(
            [
                sys.executable,
                "-c",
                TWO_DEVICES,
                str(config),
                str(tmp_path / f"run{devices}"),
                str(out),
            ],
            check=True,
            env=env,
            capture_output=True,
            timeout=300,
        )
        results.append(np.load(out))
    assert int(results[0]["n"]) == 1 and int(results[1]["n"]) == 2
    for name in ("meta_loss", "loss_term", "meta_grad_norm", "inner_loss"):
        assert float(results[0][name]) > 0
        np.testing.assert_allclose(results[1][name], results[0][name], rtol=1e-5, err_msg=name)
