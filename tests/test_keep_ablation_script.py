"""configs/keep_ablation.sh keeps a stopped ablation's small files: config, pairs, finished arms."""

from __future__ import annotations

import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "configs" / "keep_ablation.sh"


def _files(folder: pathlib.Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_finished_arms_are_kept_without_targets_or_checkpoints(tmp_path):
    run = tmp_path / "run"
    files = {
        "config.yaml": "name: x\n",
        "pairs.json": "{}\n",
        "pairs_progress.json": "{}\n",
        "arms/none/result.npz": "r",
        "arms/none/metrics.jsonl": "m",
        "arms/none/wandb/offline-run-1/run.wandb": "w",
        "arms/chord/result.npz": "r",
        "arms/chord/targets-0.npz": "t",
        "arms/chord/targets_generated-0.npz": "t",
        "arms/chord/checkpoints/ckpt-00000050/state.npz": "c",  # left by a kill after result.npz
        "arms/endpoint/no_targets.txt": "none certified",
        "arms/teacher/arm.json": "{}",  # in training: not kept
        "arms/teacher/checkpoints/ckpt-00000050/state.npz": "c",
        "arms/teacher/targets-0.npz": "t",
        "arms/teacher/target_convergence.json": "{}",  # kept with a finished block
        "arms/teacher/block-0/result.npz": "r",  # a finished block of meta-seeds: kept
        "arms/teacher/block-0/metrics.jsonl": "m",
        "arms/teacher/block-1/checkpoints/ckpt-00000010/state.npz": "c",  # in training: not kept
    }
    for name, text in files.items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(text)
    kept = tmp_path / "kept"
    subprocess.run(["bash", str(SCRIPT), str(run), str(kept)], check=True, capture_output=True)
    assert _files(kept) == {
        "config.yaml",
        "pairs.json",
        "pairs_progress.json",
        "arms/none/result.npz",
        "arms/none/metrics.jsonl",
        "arms/none/wandb/offline-run-1/run.wandb",
        "arms/chord/result.npz",
        "arms/endpoint/no_targets.txt",
        "arms/teacher/target_convergence.json",
        "arms/teacher/block-0/result.npz",
        "arms/teacher/block-0/metrics.jsonl",
    }
    refused = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "nothing"), str(kept)], capture_output=True, text=True
    )
    assert refused.returncode == 2 and "no config.yaml" in refused.stderr
