"""Fetch MNIST or CIFAR-10, verify sha256 digests, and unpack CIFAR-10 safely.

`urllib.request` does the fetching, so `file://` mirrors work (tests use them).
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import tarfile
import urllib.error
import urllib.request

from common.atomic import atomic_write
from common.progress import progress_bar
from tasks.data.cifar10 import BIN_DIR, PY_DIR, batch_names
from tasks.data.mnist import FILES as MNIST_FILES
from tasks.data.paths import DataFileError, resolve_data_dir

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/"
# From tensorflow/datasets tensorflow_datasets/url_checksums/cifar10.txt (binary) and
# cifar10.csv (python); the python digest is also keras.datasets.cifar10's file_hash.
CIFAR10_SHA256 = {
    "cifar-10-binary.tar.gz": "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    "cifar-10-python.tar.gz": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
}
CIFAR10_ARCHIVES = {
    "bin": ("cifar-10-binary.tar.gz", BIN_DIR),
    "py": ("cifar-10-python.tar.gz", PY_DIR),
}
_CHUNK = 1 << 20


def sha256_file(path: pathlib.Path) -> str:
    """Returns the hex sha256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_verified(url: str, dest: pathlib.Path, sha256: str, progress: bool = True) -> bool:
    """Downloads `url` to `dest` unless `dest` already has digest `sha256`.

    The bytes stream into a temporary file beside `dest`, which replaces `dest`
    atomically only once its digest matches, so `dest` is never a partial file.

    Returns:
      True if it downloaded, False if a verified `dest` was already there.

    Raises:
      DataFileError: the source is unreachable, or the digest differs (the
        temporary file is deleted; the message gives both digests).
    """
    if dest.is_file() and sha256_file(dest) == sha256:
        return False
    digest = hashlib.sha256()
    with atomic_write(dest) as out:  # `dest` is replaced only if the block finishes
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with progress_bar(
                    total, dest.name, unit="B", unit_scale=True, enabled=progress
                ) as bar:
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise DataFileError(
                f"could not download {dest.name} from {url} ({error}): no network (or no "
                f"such file on the mirror) was reachable. Put {dest.name} in {dest.parent} "
                f"by hand, or pass another base URL."
            ) from error
        actual = digest.hexdigest()
        if actual != sha256:
            raise DataFileError(
                f"checksum mismatch for {dest.name} from {url}: expected sha256 {sha256}, got "
                f"{actual}. The download was deleted; try again or use another mirror."
            )
    return True


def safe_extract(archive: pathlib.Path, dest: pathlib.Path) -> None:
    """Extracts a tar archive into `dest`, refusing members that could escape it.

    Every member is checked before anything is written: only regular files and
    folders with relative paths free of `..` are allowed. Where Python supports
    it, tarfile's "data" filter is applied as well.

    Raises:
      DataFileError: an unsafe member (named) or an unreadable archive.
    """
    root = dest.resolve()
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                parts = pathlib.PurePosixPath(member.name).parts
                target = (root / member.name).resolve()
                if (
                    member.name.startswith(("/", "\\"))
                    or ".." in parts
                    or not (member.isfile() or member.isdir())
                    or (target != root and root not in target.parents)
                ):
                    raise DataFileError(
                        f"refusing to extract {archive}: member {member.name!r} is not a plain "
                        f"file or folder inside {dest}. The archive is not genuine; delete it."
                    )
            if hasattr(tarfile, "data_filter"):
                tar.extractall(root, members, filter="data")
            else:  # pragma: no cover - Python without extraction filters
                tar.extractall(root, members)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DataFileError(
            f"cannot extract {archive} ({error}); delete it and download it again."
        ) from error


def download(
    dataset: str,
    data_dir: str | os.PathLike | None = None,
    *,
    base_url: str | None = None,
    checksums: dict[str, str] | None = None,
    progress: bool = True,
    cifar_format: str = "bin",
) -> pathlib.Path:
    """Fetches a data set into the data folder, verifying every file's sha256.

    Args:
      dataset: "mnist" (four IDX files into `<data_dir>/mnist/`) or "cifar10"
        (an archive into `<data_dir>/`, extracted there).
      data_dir: data folder; None resolves it with `resolve_data_dir`.
      base_url: mirror URL the file names are appended to; None is the official one.
      checksums: `{file name: sha256}` overriding the published digests.
      progress: show a tqdm progress bar per file.
      cifar_format: "bin" (cifar-10-binary.tar.gz) or "py" (cifar-10-python.tar.gz).

    Returns:
      The folder holding the data set's files (`mnist/` or `cifar-10-batches-*`).
      CIFAR-10 is not fetched again when all six batches are already extracted.

    Raises:
      DataFileError: unreachable source, digest mismatch or unsafe archive.
      ValueError: unknown `dataset` or `cifar_format`.
    """
    root = resolve_data_dir(data_dir)
    if dataset == "mnist":
        names = [name for pair in MNIST_FILES.values() for name in pair]
        known, url, folder = MNIST_SHA256, base_url or MNIST_URL, root / "mnist"
    elif dataset == "cifar10":
        if cifar_format not in CIFAR10_ARCHIVES:
            raise ValueError(f"cifar_format must be 'bin' or 'py', got {cifar_format!r}.")
        archive, extracted = CIFAR10_ARCHIVES[cifar_format]
        batches = batch_names("train", cifar_format) + batch_names("test", cifar_format)
        if all((root / extracted / name).is_file() for name in batches):
            return root / extracted  # already extracted (the archive may have been deleted)
        names, known, url, folder = [archive], CIFAR10_SHA256, base_url or CIFAR10_URL, root
    else:
        raise ValueError(f"dataset must be 'mnist' or 'cifar10', got {dataset!r}.")
    digests = {**known, **(checksums or {})}
    for name in names:
        fetch_verified(url.rstrip("/") + "/" + name, folder / name, digests[name], progress)
    if dataset == "mnist":
        return folder
    safe_extract(root / archive, root)
    if not (root / extracted).is_dir():
        raise DataFileError(
            f"{root / archive} did not contain {extracted}/; it is not the "
            f"CIFAR-10 {cifar_format} archive."
        )
    return root / extracted
