"""Turning a model location into a local model directory the handler can load.

A model is a directory, a ``model.tar.gz`` (what SageMaker training jobs write), or a storage
URI of either (``s3://…/model.tar.gz``, ``gs://…/model/``: fetched through
:func:`cloudbridge.transfers`, so the provider's plugin must be installed). Archives are
unpacked with members that would escape the target refused.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path

from cloudbridge.errors import InvalidSpec, NotFound, UnsafeKey

__all__ = ["is_archive", "materialize_model", "safe_extract"]

_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def is_archive(name: str) -> bool:
    """True for ``.tar.gz`` / ``.tgz`` / ``.tar`` names."""
    return name.lower().endswith(_ARCHIVE_SUFFIXES)


def safe_extract(archive: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Unpack ``archive`` into ``target``; absolute paths, ``..`` and links out are refused."""
    root = Path(target).resolve()
    root.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                destination = (root / member.name).resolve()
                if destination != root and root not in destination.parents:
                    raise UnsafeKey(f"{archive}: member {member.name!r} would be written outside the model directory")
                if member.issym() or member.islnk():
                    link = (destination.parent / member.linkname).resolve()
                    if root not in link.parents:
                        raise UnsafeKey(f"{archive}: link {member.name!r} points outside the model directory")
                if member.isdev():
                    raise UnsafeKey(f"{archive}: member {member.name!r} is a device file")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(root, members=members, filter="data")
            else:  # pragma: no cover - Python without extraction filters; members were checked above
                tar.extractall(root, members=members)
    except tarfile.TarError as exc:
        raise InvalidSpec(f"not a readable tar archive: {exc}", source=str(archive)) from exc
    return root


def materialize_model(source: str, workdir: str | os.PathLike[str] | None = None) -> Path:
    """A local directory holding the model at ``source`` (a dir, an archive, or a storage URI)."""
    if "://" in source and not source.startswith("file://"):
        return _download(source, workdir)
    path = Path(source.removeprefix("file://")).expanduser()
    if path.is_dir():
        return path
    if path.is_file() and is_archive(path.name):
        return safe_extract(path, Path(workdir or tempfile.mkdtemp(prefix="cb-model-")) / "model")
    if path.exists():
        raise InvalidSpec("a model is a directory or a .tar.gz archive", source=str(path))
    raise NotFound(f"model directory does not exist: {path}")


def _download(uri: str, workdir: str | os.PathLike[str] | None) -> Path:
    from cloudbridge.transfers import storage_for
    from cloudbridge.transfers.download import download_prefix

    store = storage_for(uri)
    base = Path(workdir or tempfile.mkdtemp(prefix="cb-model-"))
    if is_archive(uri.rstrip("/")):
        archive = base / "model.tar.gz"
        store.download(uri, archive)
        target = safe_extract(archive, base / "model")
        archive.unlink()
        return target
    target = base / "model"
    if not download_prefix(uri, target, storage=store):
        raise NotFound(f"no model files under {uri}")
    return target
