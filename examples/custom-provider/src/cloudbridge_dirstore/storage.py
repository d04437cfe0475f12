"""``dir://bucket/key`` storage: one directory per bucket under ``<root>/buckets``.

Only the five primitives are implemented; ``read_bytes``, ``upload``, ``download``, ``du`` and
the rest come from :class:`cloudbridge.interfaces.Storage`. Writes are atomic (a hidden temp file
renamed into place), so a reader never sees half an object, and ``checksum`` is the sha256 of the
content, computed while writing and kept in a sidecar file.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from cloudbridge.errors import BucketNotFound, InvalidURI, NotFound, UnsafeKey, UserError
from cloudbridge.interfaces import Storage, URILike, as_uri
from cloudbridge.records import ObjectInfo
from cloudbridge_dirstore.errors import translate

PARTIAL = ".dirstore-partial-"
META = ".dirstore-meta"  # sidecar folder per bucket: <bucket>/.dirstore-meta/<key>.sha256
_CHUNK = 1024 * 1024


class DirStorage(Storage):
    """Buckets are directories under ``root``; keys are relative paths inside them."""

    schemes = ("dir",)

    def __init__(self, root: Path, *, create_buckets: bool = False) -> None:
        self.buckets = Path(root) / "buckets"
        self.buckets.mkdir(parents=True, exist_ok=True)
        self.create_buckets = create_buckets

    def __repr__(self) -> str:
        return f"<DirStorage {self.buckets}>"

    # ---- buckets ------------------------------------------------------------------------------
    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (like ``aws s3 mb``); an existing bucket is fine."""
        as_uri(f"dir://{name}")  # validates the name
        (self.buckets / name).mkdir(exist_ok=True)

    def _locate(self, uri: URILike, *, for_write: bool = False) -> tuple[Path, Path, str]:
        """``(bucket dir, object path, key)`` for ``uri``; refuses other schemes and escapes."""
        parsed = as_uri(uri)  # parse_uri already refuses '..' segments, absolute keys and NUL
        if parsed.scheme != "dir":
            raise InvalidURI(f"{parsed} is not a dir:// URI")
        bucket = self.buckets / parsed.bucket
        if not bucket.is_dir():
            if for_write and self.create_buckets:
                bucket.mkdir(parents=True, exist_ok=True)
            else:
                raise BucketNotFound.of(
                    "dir", parsed.bucket,
                    hint=f"create it: mkdir {bucket} (or set create_buckets = true under [dirstore])",
                )
        key = parsed.key.rstrip("/")
        if any(part.startswith((PARTIAL, META)) for part in key.split("/")):
            raise UnsafeKey(f"key {key!r} uses a name reserved by dirstore")
        path = bucket / key if key else bucket
        real = os.path.realpath(path)
        if real != os.path.realpath(bucket) and not real.startswith(os.path.realpath(bucket) + os.sep):
            raise UnsafeKey(f"key {key!r} resolves outside bucket {parsed.bucket!r}")
        return bucket, path, key

    def _sidecar(self, bucket: Path, key: str) -> Path:
        return bucket / META / f"{key}.sha256"

    def _info(self, uri: str, key: str, path: Path, bucket: Path, full_key: str) -> ObjectInfo:
        st = path.stat()
        checksum = None
        sidecar = self._sidecar(bucket, full_key)
        try:
            recorded_inode, digest = sidecar.read_text().split()
            if int(recorded_inode) == st.st_ino:
                checksum = digest
        except (OSError, ValueError):
            pass
        etag = f"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"
        return ObjectInfo(uri=uri, key=key, size=st.st_size, mtime=st.st_mtime, etag=etag, checksum=checksum)

    # ---- the five primitives ----------------------------------------------------------------------
    def stat(self, uri: URILike) -> ObjectInfo:
        """Size, mtime, etag (inode-size-mtime) and sha256 of one object."""
        bucket, path, key = self._locate(uri)
        if not path.is_file():
            raise NotFound(f"no such object: {as_uri(uri)}")
        with translate("stat", str(as_uri(uri))):
            return self._info(str(as_uri(uri)), key.rsplit("/", 1)[-1], path, bucket, key)

    def list(self, uri: URILike, recursive: bool = True) -> Iterator[ObjectInfo]:
        """Objects under the prefix, sorted by key; ``recursive=False`` adds ``sub/`` entries."""
        bucket, path, key = self._locate(uri)  # a missing bucket is BucketNotFound, as on every cloud
        if not path.is_dir():
            return iter(())
        base = str(as_uri(uri)).rstrip("/")
        entries: list[tuple[str, Path | None]] = []
        with translate("list", base):
            if recursive:
                for directory, dirs, files in os.walk(path):
                    dirs[:] = [d for d in dirs if d != META]
                    rel_dir = os.path.relpath(directory, path)
                    for name in files:
                        if not name.startswith(PARTIAL):
                            rel = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
                            entries.append((rel, Path(directory) / name))
            else:
                for entry in os.scandir(path):
                    if entry.name.startswith(PARTIAL) or entry.name == META:
                        continue
                    entries.append((entry.name + "/", None) if entry.is_dir() else (entry.name, Path(entry.path)))
        entries.sort(key=lambda item: item[0])
        return self._infos(base, bucket, key, entries)

    def _infos(
        self, base: str, bucket: Path, prefix: str, entries: list[tuple[str, Path | None]]
    ) -> Iterator[ObjectInfo]:
        for rel, file_path in entries:
            if file_path is None:
                yield ObjectInfo(uri=f"{base}/{rel}", key=rel, size=0)
                continue
            full_key = f"{prefix}/{rel}" if prefix else rel
            try:
                yield self._info(f"{base}/{rel}", rel, file_path, bucket, full_key)
            except FileNotFoundError:
                continue  # deleted while listing

    def open_read(self, uri: URILike) -> IO[bytes]:
        """The object's bytes as a stream."""
        _bucket, path, _key = self._locate(uri)
        if not path.is_file():
            raise NotFound(f"no such object: {as_uri(uri)}")
        with translate("read", str(as_uri(uri))):
            return open(path, "rb")

    def write_stream(self, uri: URILike, stream: IO[bytes], size: int | None = None) -> ObjectInfo:
        """Copy ``stream`` to a temp file, then rename it over the key (atomic)."""
        bucket, path, key = self._locate(uri, for_write=True)
        if not key:
            raise UserError(f"{as_uri(uri)} names a bucket, not an object")
        if path.is_dir():
            raise UserError(f"{as_uri(uri)} is a prefix with objects under it")
        target = str(as_uri(uri))
        tmp = path.parent / f"{PARTIAL}{secrets.token_hex(6)}"
        digest = hashlib.sha256()
        written = 0
        with translate("write", target):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(tmp, "wb") as out:
                    for chunk in iter(lambda: stream.read(_CHUNK), b""):
                        out.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                if size is not None and size != written:
                    raise OSError(f"expected {size} bytes, read {written}")
                sidecar = self._sidecar(bucket, key)
                sidecar.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, path)
                sidecar.write_text(f"{path.stat().st_ino} {digest.hexdigest()}")
            finally:
                if tmp.exists():
                    tmp.unlink()
            return self._info(target, key.rsplit("/", 1)[-1], path, bucket, key)

    def delete(self, uri: URILike) -> None:
        """Remove one object (and empty parent prefixes); a missing object is fine."""
        bucket, path, key = self._locate(uri)
        if not key:
            raise UserError(f"{as_uri(uri)} names a bucket; delete its objects instead")
        if path.is_dir():
            raise UserError(f"{as_uri(uri)} is a prefix; delete the objects under it instead")
        with translate("delete", str(as_uri(uri))):
            try:
                path.unlink()
            except FileNotFoundError:
                return
            self._sidecar(bucket, key).unlink(missing_ok=True)
            parent = path.parent
            while parent != bucket:
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent
