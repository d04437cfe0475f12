"""``slurm://staging/<key>``: the cluster's staging folder as cloudbridge storage.

``slurm://staging/<key>`` is the file ``<staging_dir>/<key>`` on the cluster's shared filesystem,
read and written through the :class:`~cloudbridge_slurm.runner.Runner` (on this machine, or over
the shared ssh connection). Code packages, staged inputs and ``cloudbridge migrate --to slurm``
land here; a job reads ``slurm://`` inputs in place, with no copy. Whole folders move as one tar
stream (:meth:`SlurmStorage.put_tree`, :meth:`SlurmStorage.get_tree`).
"""

from __future__ import annotations

import io
import os
import posixpath
import shlex
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from cloudbridge.errors import InvalidSpec, InvalidURI, NotFound
from cloudbridge.interfaces import Storage, URILike, as_uri
from cloudbridge.records import ObjectInfo
from cloudbridge.uri import StorageURI, check_key, safe_key
from cloudbridge_slurm.runner import Runner
from cloudbridge_slurm.settings import STAGING_BUCKET

__all__ = ["SlurmStorage"]


class SlurmStorage(Storage):
    """Files under ``staging_dir`` on the cluster, addressed as ``slurm://staging/<key>``."""

    schemes = ("slurm",)

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    @property
    def root(self) -> str:
        """The staging folder on the cluster; :class:`InvalidSpec` when ``staging_dir`` is unset."""
        root = self.runner.settings.staging_dir
        if not root:
            raise InvalidSpec("no staging folder is set", field="settings.slurm.staging_dir",
                              hint="set staging_dir in the [slurm] table of config.toml or "
                              "CLOUDBRIDGE_SLURM_STAGING_DIR to a folder on the cluster's shared filesystem")
        return root

    def path(self, uri: URILike) -> str:
        """The cluster path of ``uri`` (``slurm://staging/a/b`` -> ``<staging_dir>/a/b``)."""
        parsed = as_uri(uri)
        if parsed.scheme != "slurm" or parsed.bucket != STAGING_BUCKET:
            raise InvalidURI(f"{parsed} is not a Slurm staging location (slurm://{STAGING_BUCKET}/KEY)")
        key = safe_key(parsed.key) if parsed.key.strip("/") else ""
        return posixpath.join(self.root, key) if key else self.root

    @staticmethod
    def uri(key: str) -> StorageURI:
        """``slurm://staging/<key>``."""
        return StorageURI("slurm", STAGING_BUCKET, key.strip("/"))

    # ---- primitives ------------------------------------------------------------------------------
    def stat(self, uri: URILike) -> ObjectInfo:
        """Size and mtime of one file (``stat`` on the cluster); :class:`NotFound` when absent."""
        path = self.path(uri)
        proc = self.runner.run(["stat", "-L", "-c", "%s %Y %F", path], what=f"stat {path}", check=False)
        out = proc.stdout.decode().split(maxsplit=2)
        if proc.returncode != 0 or len(out) < 3 or out[2].strip() != "regular file" and "regular" not in out[2]:
            raise NotFound(f"no file {path} on the cluster")
        parsed = as_uri(uri)
        return ObjectInfo(str(parsed), posixpath.basename(parsed.key), int(out[0]), float(out[1]))

    def list(self, uri: URILike, recursive: bool = True) -> Iterator[ObjectInfo]:
        """Files under the folder ``uri`` (``find`` on the cluster), sorted by key."""
        path = self.path(uri)
        depth = [] if recursive else ["-maxdepth", "1"]
        script = (f"test -d {shlex.quote(path)} || exit 0; "
                  f"find {shlex.quote(path)} {' '.join(depth)} -type f -printf '%P\\t%s\\t%T@\\n'")
        out = self.runner.shell(script, what=f"list {path}").stdout.decode("utf-8", "replace")
        base = as_uri(uri)
        rows = []
        for line in out.splitlines():
            key, size, mtime = line.rsplit("\t", 2)
            rows.append(ObjectInfo(str(base.child(key)), key, int(size), float(mtime)))
        yield from sorted(rows, key=lambda r: r.key)

    def open_read(self, uri: URILike) -> IO[bytes]:
        """The file's bytes (read whole: staging files are code packages, logs and small inputs)."""
        path = self.path(uri)
        proc = self.runner.run(["cat", "--", path], what=f"read {path}", check=False)
        if proc.returncode != 0:
            raise NotFound(f"no file {path} on the cluster")
        return io.BytesIO(proc.stdout)

    def write_stream(self, uri: URILike, stream: IO[bytes], size: int | None = None) -> ObjectInfo:
        """Write the file atomically: into a temporary name beside it, then ``mv``."""
        path = self.path(uri)
        folder, tmp = posixpath.dirname(path), f"{path}.cb-partial-{os.getpid()}"
        q = shlex.quote
        script = f"mkdir -p {q(folder)} && cat > {q(tmp)} && mv -f {q(tmp)} {q(path)}"
        self.runner.shell(script, what=f"write {path}", input=stream.read())
        return self.stat(uri)

    def delete(self, uri: URILike) -> None:
        """Remove one file (a missing one is fine)."""
        path = self.path(uri)
        self.runner.run(["rm", "-f", "--", path], what=f"delete {path}")

    # ---- folders in one stream -------------------------------------------------------------------
    def put_tree(self, local: str | os.PathLike[str], uri: URILike) -> int:
        """Copy a local file or folder to ``uri`` (a folder on the cluster) as one tar stream; returns files."""
        source, buffer, count = Path(local), io.BytesIO(), 0
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            if source.is_file():
                tar.add(source, arcname=source.name)
                count = 1
            else:
                for path in sorted(source.rglob("*")):
                    if path.is_file():
                        tar.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)
                        count += 1
        target = self.path(uri)
        self.runner.shell(f"mkdir -p {shlex.quote(target)} && tar -xzf - -C {shlex.quote(target)}",
                          what=f"stage {source} to {target}", input=buffer.getvalue())
        return count

    def get_tree(self, uri: URILike, local: str | os.PathLike[str]) -> int:
        """Copy the folder ``uri`` on the cluster into the local folder ``local``; returns files copied."""
        source = self.path(uri)
        proc = self.runner.shell(f"test -d {shlex.quote(source)} || exit 0; tar -czf - -C {shlex.quote(source)} .",
                                 what=f"fetch {source}")
        if not proc.stdout:
            return 0
        target = Path(local)
        count = 0
        with tarfile.open(fileobj=io.BytesIO(proc.stdout), mode="r:gz") as tar:
            members = [m for m in tar.getmembers() if (m.isfile() or m.isdir()) and m.name not in (".", "./")]
            for member in members:  # names the job wrote: the same key rule as every download, before any write
                check_key(member.name.removeprefix("./"))
            target.mkdir(parents=True, exist_ok=True)
            tar.extractall(target, members=members, filter="data")
            count = sum(1 for m in members if m.isfile())
        return count
