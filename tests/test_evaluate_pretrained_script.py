"""configs/evaluate_pretrained.sh passes every comma-separated checkpoint to one evaluation."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "configs" / "evaluate_pretrained.sh"


@pytest.fixture
def scratch_checkout(tmp_path):
    """A folder with the script and a stand-in `meta-opt` that writes its arguments, one a line."""
    (tmp_path / "configs").mkdir()
    shutil.copy(SCRIPT, tmp_path / "configs" / SCRIPT.name)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    fake = bin_dir / "meta-opt"
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$(dirname "$0")/args.txt"\n')
    fake.chmod(0o755)
    return tmp_path


def _arguments(checkout: pathlib.Path, *script_args: str) -> list[str]:
    subprocess.run(
        ["bash", str(checkout / "configs" / SCRIPT.name), *script_args], check=True, cwd=checkout
    )
    return (checkout / ".venv" / "bin" / "args.txt").read_text().splitlines()


def test_several_checkpoints_become_repeated_flags(scratch_checkout):
    args = _arguments(
        scratch_checkout, "hier=runs/h,pretrained:v2_mixed,pretrained:v2_digits", "out", "a.b=1"
    )
    flags = [args[i + 1] for i, a in enumerate(args) if a == "--checkpoint"]
    assert flags == ["hier=runs/h", "pretrained:v2_mixed", "pretrained:v2_digits"]
    assert args[0] == "evaluate" and args[args.index("--out") + 1] == "out"
    assert args[-1] == "a.b=1" and "--generalization" in args


def test_one_checkpoint_as_before(scratch_checkout):
    args = _arguments(scratch_checkout, "runs/pretrain/v2_mixed", "out")
    assert [args[i + 1] for i, a in enumerate(args) if a == "--checkpoint"] == [
        "runs/pretrain/v2_mixed"
    ]
    assert any(a.startswith("evaluation.tasks=[") for a in args)


def test_an_ablation_folder_becomes_every_finished_arms_meta_seeds(scratch_checkout):
    import sys

    (scratch_checkout / ".venv" / "bin" / "python").symlink_to(sys.executable)
    ablation = scratch_checkout / "abl"
    ablation.mkdir()
    (ablation / "config.yaml").write_text("name: x\nablation:\n  meta_seeds: 3\n  arms: [none]\n")
    for arm, finished in (("none", True), ("teacher", True), ("chord", False)):
        (ablation / "arms" / arm).mkdir(parents=True)
        if finished:
            (ablation / "arms" / arm / "result.npz").write_bytes(b"")
    args = _arguments(scratch_checkout, "pretrained:v2_mixed,arms:abl", "out")
    flags = [args[i + 1] for i, a in enumerate(args) if a == "--checkpoint"]
    assert flags == ["pretrained:v2_mixed"] + [
        f"{arm}_{k}=arm:abl/arms/{arm}@{k}" for arm in ("none", "teacher") for k in range(3)
    ]
