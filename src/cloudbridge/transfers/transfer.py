"""Copying one object between any two storages, choosing the fastest safe path.

* local -> local: the kernel's file copy into a temp file, renamed into place;
* local -> cloud: the destination's ``upload`` (its multipart path for large files);
* cloud -> local: the source's ``download`` into a hidden temp file next to the target, then
  the source's mtime is set and the file renamed into place (a final name is never partial);
* cloud -> cloud: ``open_read`` streamed into ``write_stream`` through this machine, in bounded
  memory (the destination's multipart-on-stream path).

Local destinations get the source object's mtime, which is what makes a re-sync a no-op.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import IO, Any

from cloudbridge.interfaces import Storage
from cloudbridge.records import ObjectInfo
from cloudbridge.uri import StorageURI

__all__ = ["CountingReader", "copy_object"]


class CountingReader:
    """Wraps a binary stream and reports every chunk read to ``on_bytes``."""

    def __init__(self, stream: IO[bytes], on_bytes: Callable[[int], None]) -> None:
        self._stream = stream
        self._on_bytes = on_bytes

    def read(self, size: int = -1) -> bytes:
        """Read like the wrapped stream, counting the bytes."""
        data = self._stream.read(size)
        if data:
            self._on_bytes(len(data))
        return data

    def readable(self) -> bool:
        """Always true."""
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _partial_path(target: str) -> str:
    from cloudbridge.interfaces import PARTIAL_PREFIX

    directory, name = os.path.split(target)
    return os.path.join(directory, f"{PARTIAL_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{name[:80]}")


def copy_object(
    src_storage: Storage,
    src: ObjectInfo,
    dst_storage: Storage,
    dst: StorageURI,
    *,
    on_bytes: Callable[[int], None] | None = None,
) -> int:
    """Copy the object ``src`` to ``dst``; return the bytes copied (reported to ``on_bytes`` too)."""
    from cloudbridge.interfaces import as_uri

    counted = 0

    def count(n: int) -> None:
        nonlocal counted
        counted += n
        if on_bytes is not None:
            on_bytes(n)

    src_uri = as_uri(src.uri)
    if src_uri.is_local and dst.is_local:
        upload: Any = dst_storage.upload
        upload(src_uri.path, dst, mtime=src.mtime)
    elif src_uri.is_local:
        dst_storage.upload(src_uri.path, dst)
    elif dst.is_local:
        _download_atomic(src_storage, src, dst.path)
    else:
        with src_storage.open_read(src_uri) as stream:
            dst_storage.write_stream(dst, CountingReader(stream, count), size=src.size)  # type: ignore[arg-type]
        return counted
    count(src.size - counted)
    return counted


def _download_atomic(src_storage: Storage, src: ObjectInfo, target: str) -> None:
    directory = os.path.dirname(target)
    os.makedirs(directory, exist_ok=True)
    tmp = _partial_path(target)
    try:
        src_storage.download(src.uri, tmp)
        if src.mtime is not None:
            os.utime(tmp, (src.mtime, src.mtime))
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
