"""The rules of docs/ARCHITECTURE.md, checked on the source tree."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LIBRARY = ["common", "meta_opt", "tasks", "geodesic_targets", "trainers"]
# package -> the packages of ours it may import
ALLOWED = {
    "common": set(),
    "meta_opt": {"common"},
    "tasks": {"common"},
    "geodesic_targets": {"common", "meta_opt", "tasks"},
    "trainers": {"common", "meta_opt", "tasks", "geodesic_targets"},
}


def modules():
    for package in LIBRARY:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield package, path


def imported(path: pathlib.Path) -> set[str]:
    """Every module name a file imports (top level or inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


@pytest.mark.parametrize(
    "package, path", list(modules()), ids=lambda x: str(x).split("/work/main/")[-1]
)
def test_imports_point_one_way(package, path):
    ours = {name.split(".")[0] for name in imported(path)} & set(LIBRARY)
    assert ours - {package} <= ALLOWED[package], f"{path} imports {sorted(ours - {package})}"


def test_no_library_module_imports_a_command_module_or_prints():
    for _, path in modules():
        if "trainers/commands" in str(path):
            continue
        assert not any(name.startswith("trainers.commands") for name in imported(path)), path
        tree = ast.parse(path.read_text(encoding="utf-8"))
        prints = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "print"
        ]
        assert not prints, f"{path} prints (only trainers.commands may)"


def test_no_library_file_is_over_300_lines():
    long = {
        str(path): n for _, path in modules() if (n := len(path.read_text().splitlines())) > 300
    }
    assert not long, long


def test_loading_and_checking_a_config_imports_neither_jax_nor_wandb():
    code = (
        "import sys; from trainers.config import load_experiment; "
        "load_experiment('configs/demo.yaml', ['task.options.batch_size=64']); "
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'jax', 'wandb', 'optax', 'haiku', 'matplotlib'}); "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"config loading imported {out.stdout.strip()}"


def test_no_library_module_tests_for_a_supervision_arm_by_name():
    """Arms are data (trainers/config/arms.py): pipelines ask the table, never `arm == "chord"`."""
    from trainers.config.arms import ARM_NAMES

    found = []  # geodesic_targets' path and schedule values ("teacher", "chord") are not arms
    for package, path in modules():
        if package != "trainers" or path.name == "arms.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                names = [s.value for s in sides if isinstance(s, ast.Constant)]
                names += [
                    e.value
                    for s in sides
                    if isinstance(s, ast.Tuple | ast.List | ast.Set)
                    for e in s.elts
                    if isinstance(e, ast.Constant)
                ]
                if any(x in ast.unparse(node) for x in (".path", ".schedule")):
                    continue  # path and schedule values share words with arms ("chord")
                hits = [n for n in names if n in ARM_NAMES and n != "none"]
                if hits or ("none" in names and "supervision" in ast.unparse(node)):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert not found, found
