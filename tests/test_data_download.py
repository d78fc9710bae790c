"""`download` against a file:// mirror: checksums, atomic writes, skipping, safe extraction."""

from __future__ import annotations

import hashlib
import io
import pathlib
import tarfile

import numpy as np
import pytest

from tasks.data import DataFileError, download, load_cifar10, load_mnist
from tasks.data.download import CIFAR10_SHA256, MNIST_SHA256, sha256_file

MNIST_NAMES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
def mnist_mirror(tmp_path, tiny_data_dir) -> tuple[str, dict[str, str]]:
    """A file:// mirror (in tmp_path/mirror) of the tiny genuine-IDX MNIST files, and digests."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    sums = {}
    for name in MNIST_NAMES:
        data = (tiny_data_dir / "mnist" / name).read_bytes()
        (mirror / name).write_bytes(data)
        sums[name] = digest(data)
    return mirror.as_uri() + "/", sums


def test_mnist_download_writes_verified_files(tmp_path, mnist_mirror, tiny_data_dir):
    url, sums = mnist_mirror
    where = download("mnist", tmp_path / "data", base_url=url, checksums=sums, progress=False)
    assert where == tmp_path / "data" / "mnist"
    assert leftovers(tmp_path / "data") == sorted(MNIST_NAMES)
    for name in MNIST_NAMES:
        assert (where / name).read_bytes() == (tiny_data_dir / "mnist" / name).read_bytes()
    images, _ = load_mnist("test", tmp_path / "data")
    assert images.shape == (48, 28, 28)


def test_wrong_checksum_names_file_and_digests_and_leaves_nothing(tmp_path, mnist_mirror):
    url, sums = mnist_mirror
    wrong = {**sums, "t10k-images-idx3-ubyte.gz": "0" * 64}
    with pytest.raises(DataFileError) as error:
        download("mnist", tmp_path / "data", base_url=url, checksums=wrong, progress=False)
    message = str(error.value)
    assert "t10k-images-idx3-ubyte.gz" in message and "0" * 64 in message
    assert sums["t10k-images-idx3-ubyte.gz"] in message  # the actual digest
    assert "t10k-images-idx3-ubyte.gz" not in leftovers(tmp_path / "data")
    assert not [n for n in leftovers(tmp_path / "data") if n.endswith(".part")]


def test_published_digests_are_the_default(tmp_path, mnist_mirror):
    url, _ = mnist_mirror
    with pytest.raises(DataFileError) as error:
        download("mnist", tmp_path / "data", base_url=url, progress=False)
    assert MNIST_SHA256["train-images-idx3-ubyte.gz"] in str(error.value)
    assert leftovers(tmp_path / "data") == []
    assert len(CIFAR10_SHA256["cifar-10-binary.tar.gz"]) == 64


def test_second_call_skips_verified_files_and_replaces_bad_ones(tmp_path, mnist_mirror):
    url, sums = mnist_mirror
    target = tmp_path / "data"
    download("mnist", target, base_url=url, checksums=sums, progress=False)
    good = (target / "mnist" / MNIST_NAMES[0]).read_bytes()
    (target / "mnist" / MNIST_NAMES[0]).write_bytes(b"damaged")
    download("mnist", target, base_url=url, checksums=sums, progress=False)
    assert (target / "mnist" / MNIST_NAMES[0]).read_bytes() == good
    for name in MNIST_NAMES:
        (tmp_path / "mirror" / name).unlink()
    assert download("mnist", target, base_url=url, checksums=sums, progress=False).is_dir()


def test_unreachable_source_says_where_to_put_files(tmp_path):
    missing = (tmp_path / "nowhere").as_uri() + "/"
    with pytest.raises(DataFileError) as error:
        download("mnist", tmp_path / "data", base_url=missing, progress=False)
    message = str(error.value)
    assert "train-images-idx3-ubyte.gz" in message and "no network" in message
    assert str(tmp_path / "data" / "mnist") in message
    assert leftovers(tmp_path / "data") == []


def make_tar(
    path: pathlib.Path, members: dict[str, bytes | None], links: dict[str, str] | None = None
) -> str:
    """Writes a tar.gz of regular files (None = folder) and symlinks; returns its sha256."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return sha256_file(path)


def bin_record(label: int, red_first: int) -> bytes:
    return bytes([label, red_first]) + bytes(3071)


def test_cifar_bin_archive_is_verified_extracted_and_loadable(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    batch = bin_record(4, 17) + bin_record(2, 0)
    sha = make_tar(
        mirror / "cifar-10-binary.tar.gz",
        {"cifar-10-batches-bin": None, "cifar-10-batches-bin/test_batch.bin": batch},
    )
    data = tmp_path / "data"
    where = download(
        "cifar10",
        data,
        base_url=mirror.as_uri(),
        checksums={"cifar-10-binary.tar.gz": sha},
        progress=False,
    )
    assert where == data / "cifar-10-batches-bin"
    assert (where / "test_batch.bin").read_bytes() == batch
    images, labels = load_cifar10("test", data)
    assert labels.tolist() == [4, 2] and images[0, 0, 0].tolist() == [17, 0, 0]
    (mirror / "cifar-10-binary.tar.gz").unlink()  # the verified archive is reused
    download(
        "cifar10",
        data,
        base_url=mirror.as_uri(),
        checksums={"cifar-10-binary.tar.gz": sha},
        progress=False,
    )


def test_complete_cifar_folder_is_not_fetched_again(tmp_path, tiny_data_dir):
    where = download(
        "cifar10", tiny_data_dir, base_url=(tmp_path / "nowhere").as_uri(), progress=False
    )
    assert where == tiny_data_dir / "cifar-10-batches-bin"


def test_cifar_python_archive(tmp_path):
    from tasks.data import write_cifar10_py

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    write_cifar10_py(tmp_path / "test_batch", x, np.array([1, 2, 3]))
    sha = make_tar(
        mirror / "cifar-10-python.tar.gz",
        {"cifar-10-batches-py/test_batch": (tmp_path / "test_batch").read_bytes()},
    )
    where = download(
        "cifar10",
        tmp_path / "data",
        base_url=mirror.as_uri(),
        cifar_format="py",
        checksums={"cifar-10-python.tar.gz": sha},
        progress=False,
    )
    assert where.name == "cifar-10-batches-py"
    np.testing.assert_array_equal(load_cifar10("test", tmp_path / "data")[0], x)


@pytest.mark.parametrize(
    "members, links",
    [
        ({"../evil": b"x"}, None),
        ({"cifar-10-batches-bin/../../evil": b"x"}, None),
        ({"/tmp/evil-absolute-member": b"x"}, None),
        (
            {"cifar-10-batches-bin/test_batch.bin": bin_record(1, 1)},
            {"cifar-10-batches-bin/up": ".."},
        ),
    ],
)
def test_unsafe_archive_members_are_refused(tmp_path, members, links):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    sha = make_tar(mirror / "cifar-10-binary.tar.gz", members, links)
    data = tmp_path / "data"
    with pytest.raises(DataFileError, match="refusing to extract"):
        download(
            "cifar10",
            data,
            base_url=mirror.as_uri(),
            checksums={"cifar-10-binary.tar.gz": sha},
            progress=False,
        )
    assert not (tmp_path / "evil").exists()
    assert leftovers(data) == ["cifar-10-binary.tar.gz"]  # nothing extracted


def test_sha256_file_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 5000
    (tmp_path / "blob").write_bytes(data)
    assert sha256_file(tmp_path / "blob") == digest(data)
