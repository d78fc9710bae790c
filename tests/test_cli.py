"""End-to-end tests of the `meta-opt` commands on tiny inputs."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
import yaml

import tasks
from trainers.commands import cli
from trainers.config.experiment import load_experiment

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


@pytest.mark.parametrize(
    "override, named",
    [
        ("task.optoins.batch_size=3", "task.optoins"),
        ("task.options.batch_sise=3", "batch_sise"),
        ("seed=three", "seed"),
        ("seed", "seed"),
    ],
)
def test_config_errors_name_the_key(override, named, capsys):
    status = cli.main(["config", "--config", str(CONFIGS / "digits_mlp.yaml"), override])
    err = capsys.readouterr().err
    assert status == 2 and named in err and "Traceback" not in err


def test_download_without_reachable_files_names_the_file(tmp_path, capsys):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "train-images-idx3-ubyte.gz").write_bytes(b"not the real file")
    target = tmp_path / "data"
    status = cli.main(
        [
            "data",
            "download",
            "mnist",
            "--data-dir",
            str(target),
            "--base-url",
            mirror.as_uri() + "/",
        ]
    )
    err = capsys.readouterr().err
    assert status == 2 and "train-images-idx3-ubyte.gz" in err
    leftovers = [p for p in target.rglob("*") if p.is_file()] if target.exists() else []
    assert leftovers == []


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(tmp_path, capsys, monkeypatch):
    # A run folder in the wrong state is the user's to fix: one line, exit status 2.
    assert cli.main(["train", "--resume", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("meta-opt: error: ")
        and "is not a run folder" in err
        and err.count("\n") == 1
    )
    # An internal bug (here a KeyError deep inside a command) is not a user error: it propagates.
    from trainers.pipelines import geodesics

    def broken(*args, **kwargs):
        raise KeyError("internal bug")

    monkeypatch.setattr(geodesics, "targets_command", broken)
    with pytest.raises(KeyError, match="internal bug"):
        cli.main(
            [
                "geodesics",
                "targets",
                "--config",
                str(CONFIGS / "digits_mlp.yaml"),
                "--out",
                str(tmp_path / "targets"),
            ]
        )


def test_every_user_error_type_is_a_user_error_and_prints_as_one_line(
    tmp_path, capsys, monkeypatch
):
    from common.errors import UserError
    from geodesic_targets.targets import NoCertifiedPairs
    from meta_opt.pretrained_bundles import PretrainedError
    from tasks.data.paths import DataFileError
    from trainers.config.loader import ConfigError
    from trainers.errors import RunError
    from trainers.io.checkpoint import CheckpointError
    from trainers.pipelines import geodesics

    kinds = [
        ConfigError,
        DataFileError,
        CheckpointError,
        RunError,
        NoCertifiedPairs,
        PretrainedError,
    ]
    assert all(issubclass(kind, UserError) for kind in kinds)
    # the library's exception classes: each is a user error or one of the known internal types
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    declared = set()
    for package in ("common", "meta_opt", "tasks", "geodesic_targets", "trainers"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef) and any(
                    getattr(b, "id", "").endswith(("Error", "Exception")) for b in node.bases
                ):
                    declared.add(node.name)
    assert declared - {k.__name__ for k in kinds} <= {"UserError", "_WrongType"}, declared
    for kind in kinds:  # raised inside any command, each is one line with exit status 2

        def refuse(*args, kind=kind, **kwargs):
            raise kind(f"{kind.__name__} for the user to fix")

        monkeypatch.setattr(geodesics, "targets_command", refuse)
        status = cli.main(
            [
                "geodesics",
                "targets",
                "--config",
                str(CONFIGS / "digits_mlp.yaml"),
                "--out",
                str(tmp_path / "t"),
            ]
        )
        err = capsys.readouterr().err
        assert status == 2 and err == f"meta-opt: error: {kind.__name__} for the user to fix\n"
