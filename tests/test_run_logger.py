"""RunLogger: W&B offline files read back from the `.wandb` log, metrics.jsonl, resume."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import wandb

from tests.wandb_offline import read_offline_run
from trainers.config.sections import LoggingConfig
from trainers.io.run_logger import RunLogger, resolve_mode

KEYS = (
    "meta_loss",
    "imitation_loss",
    "inner_loss",
    "meta_grad_norm",
    "skipped_steps",
    "inner_steps_per_second",
)
CONFIG = {"seed": 3, "task": {"name": "quadratic", "dims": [4, 2]}, "trainer": {"lr": 1e-3}}


def _metrics(step: int) -> dict[str, float]:
    """Distinct, non-round values per key and step (numpy scalars, as from jax.device_get)."""
    return {k: np.float32(0.5 + step + 0.125 * i) for i, k in enumerate(KEYS)}


@pytest.fixture(autouse=True)
def isolated_wandb(tmp_path, monkeypatch):
    """No API key and a private HOME: nothing global is read or written."""
    home = tmp_path / "home"
    home.mkdir()
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL", "WANDB_DIR", "WANDB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NETRC", str(home / ".netrc"))
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    yield
    wandb.teardown()  # The next test starts a fresh W&B session that reads its own environment.


def _read_jsonl(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_resolve_mode_auto_without_key_is_offline():
    assert resolve_mode("auto") == "offline"
    assert resolve_mode("disabled") == "disabled"
    assert resolve_mode("online") == "online"


def test_resolve_mode_auto_with_key_is_online(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_API_KEY", "a" * 40)
    assert resolve_mode("auto") == "online"
    monkeypatch.setenv("WANDB_MODE", "offline")  # The environment wins over "auto".
    assert resolve_mode("auto") == "offline"
    assert resolve_mode("disabled") == "disabled"


def test_resolve_mode_auto_with_netrc_key_is_online(tmp_path):
    (tmp_path / "home" / ".netrc").write_text(
        f"machine api.wandb.ai\n  login user\n  password {'b' * 40}\n"
    )
    assert resolve_mode("auto") == "online"


def test_offline_run_is_read_back_and_resumed(tmp_path):
    run_dir = tmp_path / "run"
    logging = LoggingConfig(run_name="tiny", tags=("test",))
    with RunLogger(run_dir, CONFIG, logging) as logger:
        assert logger.mode == "offline"
        for step in range(3):
            logger.log(step, _metrics(step))
        logger.log_summary({"final_meta_loss": 2.5})
        first_folder = logger.run_path
    run_id = RunLogger.stored_run_id(run_dir)
    assert (
        run_id
        and first_folder.name.startswith("offline-run-")
        and first_folder.name.endswith(run_id)
    )

    written = read_offline_run(first_folder)
    assert written["run_id"] == run_id and written["exit_code"] == 0
    assert written["config"] == CONFIG
    assert [row["_step"] for row in written["history"]] == [0, 1, 2]
    for row in written["history"]:
        assert {k for k in row if not k.startswith("_")} == set(KEYS)
        for key, value in _metrics(row["_step"]).items():
            assert math.isclose(row[key], float(value), rel_tol=1e-6)
    assert written["summary"]["final_meta_loss"] == 2.5
    assert json.loads((run_dir / "summary.json").read_text()) == {"final_meta_loss": 2.5}

    lines = _read_jsonl(run_dir)
    assert [line["step"] for line in lines] == [0, 1, 2]
    for line in lines:
        assert line == {
            "step": line["step"],
            **{k: float(v) for k, v in _metrics(line["step"]).items()},
        }

    with RunLogger(run_dir, CONFIG, logging, resume_id=RunLogger.stored_run_id(run_dir)) as logger:
        for step in (3, 4):
            logger.log(step, _metrics(step))
        second_folder = logger.run_path
    assert (
        second_folder != first_folder and f"-{run_id}" in second_folder.name
    )  # "-1" suffix if same second.
    assert RunLogger.stored_run_id(run_dir) == run_id
    resumed = read_offline_run(second_folder)
    assert resumed["run_id"] == run_id
    assert [row["_step"] for row in resumed["history"]] == [3, 4]
    assert [line["step"] for line in _read_jsonl(run_dir)] == [0, 1, 2, 3, 4]


def test_disabled_mode_writes_jsonl_only_and_nonfinite_as_null(tmp_path):
    run_dir = tmp_path / "run"
    with RunLogger(run_dir, CONFIG, LoggingConfig(mode="disabled")) as logger:
        logger.log(0, {"meta_loss": float("nan"), "inner_loss": np.inf, "skipped_steps": 1})
        logger.log_table("final", ["optimizer", "loss"], [["adam", 0.1]])
        assert logger.run_path is None
    assert not (run_dir / "wandb").exists()
    assert RunLogger.stored_run_id(run_dir) is None
    assert _read_jsonl(run_dir) == [
        {"step": 0, "meta_loss": None, "inner_loss": None, "skipped_steps": 1.0}
    ]


def test_exception_inside_with_still_finishes_the_run(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(RuntimeError, match="boom"):
        with RunLogger(run_dir, {"a": 1}, LoggingConfig(mode="offline")) as logger:
            logger.log(0, {"meta_loss": 1.0})
            raise RuntimeError("boom")
    written = read_offline_run(logger.run_path)
    assert [row["meta_loss"] for row in written["history"]] == [1.0]
    assert written["exit_code"] == 1
    assert logger._run is None  # pylint: disable=protected-access
    assert logger._jsonl is None  # pylint: disable=protected-access  (metrics.jsonl was closed)
