"""End-to-end tests of the `meta-opt` commands on tiny inputs."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
import yaml

import tasks
from trainers import cli
from trainers.experiment_config import load_experiment

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"


def test_console_script_lists_tasks():
    script = pathlib.Path(sys.executable).with_name("meta-opt")
    result = subprocess.run([str(script), "tasks"], capture_output=True, text=True, check=True)
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    assert listed == tasks.list_tasks()


def test_tasks_options_shows_defaults(capsys):
    assert cli.main(["tasks", "--options", "digits_mlp"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "hidden_sizes: (20,)" in lines and "activation: 'sigmoid'" in lines
    assert "batch_size: 128" in lines


def test_tasks_options_unknown_task_is_a_clear_error(capsys):
    assert cli.main(["tasks", "--options", "mnist_mpl"]) == 2
    err = capsys.readouterr().err
    assert "mnist_mpl" in err and "digits_mlp" in err and "Traceback" not in err


def test_config_prints_resolved_config_with_override(capsys):
    path = CONFIGS / "digits_mlp.yaml"
    assert cli.main(["config", "--config", str(path), "task.options.batch_size=64", "seed=7"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["seed"] == 7 and printed["task"]["options"]["batch_size"] == 64
    assert printed["task"]["name"] == "digits_mlp"


def test_config_out_writes_a_repeatable_config(tmp_path):
    out = tmp_path / "resolved.yaml"
    path = CONFIGS / "digits_mlp.yaml"
    assert cli.main(["config", "--config", str(path), "--out", str(out), "seed=3"]) == 0
    assert load_experiment(out) == load_experiment(path, ["seed=3"])


@pytest.mark.parametrize("override, named", [
    ("task.optoins.batch_size=3", "task.optoins"),
    ("task.options.batch_sise=3", "batch_sise"),
    ("seed=three", "seed"),
    ("seed", "seed"),
])
def test_config_errors_name_the_key(override, named, capsys):
    status = cli.main(["config", "--config", str(CONFIGS / "digits_mlp.yaml"), override])
    err = capsys.readouterr().err
    assert status == 2 and named in err and "Traceback" not in err


def test_download_without_reachable_files_names_the_file(tmp_path, capsys):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "train-images-idx3-ubyte.gz").write_bytes(b"not the real file")
    target = tmp_path / "data"
    status = cli.main(["data", "download", "mnist", "--data-dir", str(target),
                       "--base-url", mirror.as_uri() + "/"])
    err = capsys.readouterr().err
    assert status == 2 and "train-images-idx3-ubyte.gz" in err
    leftovers = [p for p in target.rglob("*") if p.is_file()] if target.exists() else []
    assert leftovers == []
