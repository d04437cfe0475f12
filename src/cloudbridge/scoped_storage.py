"""``cb.storage("s3://bucket/runs")``: a :class:`~cloudbridge.interfaces.Storage` scoped to one prefix.

Every method takes either a key relative to the prefix (``"model.safetensors"`` ->
``s3://bucket/runs/model.safetensors``) or a full URI, which must lie at or below the prefix; anything
else is refused with :class:`~cloudbridge.errors.UnsafeKey`, as keys with ``..`` are. ``list()`` with
no argument lists the whole prefix. The provider's own storage does the work (multipart uploads
included); this class only resolves and checks locations.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import IO

from cloudbridge.errors import UnsafeKey
from cloudbridge.interfaces import Storage, URILike
from cloudbridge.records import ObjectInfo
from cloudbridge.uri import StorageURI, parse_uri

__all__ = ["ScopedStorage"]


class ScopedStorage(Storage):
    """The provider storage ``inner`` limited to the prefix ``prefix`` (see the module docstring)."""

    def __init__(self, inner: Storage, prefix: StorageURI) -> None:
        self.inner = inner
        self.prefix = prefix
        self.schemes = inner.schemes

    def __repr__(self) -> str:
        return f"<ScopedStorage {self.prefix} via {type(self.inner).__name__}>"

    def uri(self, key: URILike = "") -> StorageURI:
        """The full URI of ``key`` (relative to the prefix, or a URI inside it); :class:`UnsafeKey` outside."""
        if isinstance(key, StorageURI):
            target = key
        else:
            text = os.fspath(key)
            if not text:
                return self.prefix
            if "://" in text or os.path.isabs(text):
                target = parse_uri(text)
            else:
                return self.prefix.child(text)
        if not self._inside(target):
            raise UnsafeKey(f"{target} is outside this storage's prefix {self.prefix}",
                            hint=f"use a key relative to {self.prefix}, or cb.storage() of the other location")
        return target

    def _inside(self, target: StorageURI) -> bool:
        if (target.scheme, target.bucket) != (self.prefix.scheme, self.prefix.bucket):
            return False
        root = self.prefix.key.rstrip("/")
        return not root or target.key.rstrip("/") == root or target.key.startswith(root + "/")

    # ---- the five primitives, delegated ------------------------------------------------------
    def stat(self, uri: URILike) -> ObjectInfo:
        """Size, mtime and etag/checksum of one object; :class:`NotFound` when absent."""
        return self.inner.stat(self.uri(uri))

    def list(self, uri: URILike = "", recursive: bool = True) -> Iterator[ObjectInfo]:
        """Objects under ``uri`` (default: the whole prefix), keys relative to it."""
        return self.inner.list(self.uri(uri), recursive=recursive)

    def open_read(self, uri: URILike) -> IO[bytes]:
        """A binary stream of the object's bytes; :class:`NotFound` when absent."""
        return self.inner.open_read(self.uri(uri))

    def write_stream(self, uri: URILike, stream: IO[bytes], size: int | None = None) -> ObjectInfo:
        """Store everything read from ``stream`` at ``uri`` atomically."""
        return self.inner.write_stream(self.uri(uri), stream, size=size)

    def delete(self, uri: URILike) -> None:
        """Delete one object; deleting a missing object is not an error."""
        self.inner.delete(self.uri(uri))

    # ---- derived methods the provider may do faster ------------------------------------------
    def upload(self, local_path: str | os.PathLike[str], uri: URILike) -> ObjectInfo:
        """Copy one local file to ``uri`` (a key or a URI inside the prefix)."""
        return self.inner.upload(local_path, self.uri(uri))

    def download(self, uri: URILike, local_path: str | os.PathLike[str]) -> None:
        """Copy one object to a local file; the file appears only once complete."""
        self.inner.download(self.uri(uri), local_path)

    def du(self, uri: URILike = "") -> tuple[int, int]:
        """``(object count, total bytes)`` under ``uri`` (default: the whole prefix)."""
        return self.inner.du(self.uri(uri))

    def abort_incomplete(self, uri: URILike = "", older_than_s: float = 3600.0) -> int:
        """Discard unfinished writes under ``uri`` (default: the prefix); see :meth:`Storage.abort_incomplete`."""
        return self.inner.abort_incomplete(self.uri(uri), older_than_s)
