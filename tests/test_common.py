"""common/: atomic writes, the pytree <-> npz codec, lazy exports, the progress bar."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from common import npz_tree
from common.atomic import atomic_write, write_text
from common.lazy import lazy_exports
from common.progress import progress_bar


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "sub" / "file.txt"
    write_text(path, "old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(path, "w") as f:
            f.write("half of the new")
            raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert [p.name for p in path.parent.iterdir()] == ["file.txt"]
    with atomic_write(path) as f:
        f.write(b"new")
    assert path.read_bytes() == b"new"
    with pytest.raises(ValueError, match="whole files"):
        with atomic_write(path, "a"):
            pass


def test_the_codec_round_trips_haiku_names_and_refuses_pickled_dtypes(tmp_path):
    tree = {
        "mlp/~/linear_0": {"w": jnp.arange(6.0).reshape(2, 3), "b%": jnp.zeros(3)},
        "steps": [np.int32(4)],
    }
    arrays = npz_tree.encode(tree)
    assert set(arrays) == {"mlp%2F~%2Flinear_0/w", "mlp%2F~%2Flinear_0/b%25", "steps/0"}
    npz_tree.write_npz(tmp_path / "t.npz", arrays)
    back = npz_tree.decode(npz_tree.read_npz(tmp_path / "t.npz"))
    np.testing.assert_array_equal(back["mlp/~/linear_0"]["w"], np.arange(6.0).reshape(2, 3))
    assert back["steps"]["0"] == 4
    with pytest.raises(ValueError, match="without pickle"):
        npz_tree.encode({"x": np.array([object()])})
    with pytest.raises(ValueError, match="clashes"):
        npz_tree.decode({"a": np.zeros(1), "a/b": np.zeros(1)})
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        npz_tree.read_npz(tmp_path / "bad.npz")


def test_lazy_exports_import_on_first_use_and_name_unknown_attributes():
    getattr_, dir_ = lazy_exports("common", {"atomic_write": "atomic"})
    assert getattr_("atomic_write") is atomic_write
    assert dir_() == ["atomic_write"]
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        getattr_("nothing")


def test_the_progress_bar_counts_and_a_disabled_one_is_silent(capsys):
    with progress_bar(3, "work", unit="pair") as bar:
        bar.update(2)
        assert bar.n == 2 and bar.total == 3
    assert "work" in capsys.readouterr().err
    with progress_bar(3, "quiet", enabled=False) as bar:
        bar.update(2)
        bar.set_postfix(loss=1.0)  # accepted, and nothing is printed
    assert "quiet" not in capsys.readouterr().err
