"""Hash once, verify before anything is visible: the upload and download paths cloud storages share.

A cloud upload must not start until the whole source has been read without error (a failing source
uploads nothing) and its checksums are known (the store verifies them). Each plugin keeps its own
:class:`StreamDigests` subclass, adding the checksum its store speaks (MD5 for Azure Blob, CRC32 for
S3, crc32c for GCS) on top of the sha256 that cloudbridge records everywhere::

    class Digests(StreamDigests):
        def __init__(self) -> None:
            super().__init__()
            self.md5 = hashlib.md5(usedforsecurity=False)

        def update_extra(self, chunk: bytes) -> None:
            self.md5.update(chunk)

    with spooled(stream, Digests(), max_memory=8 << 20, prefix="cb-az-") as (spool, digests):
        upload(spool, digests)
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any, TypeVar

__all__ = ["CHUNK", "StreamDigests", "VerifyingReader", "new_partial", "partial_file", "spooled", "stream_sha256"]

#: Bytes read per call while hashing or spooling.
CHUNK = 1024 * 1024

D = TypeVar("D", bound="StreamDigests")


class StreamDigests:
    """sha256 and size of a byte stream, updated chunk by chunk; subclasses add their store's checksum."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        """Add ``chunk`` to every digest."""
        self.sha256.update(chunk)
        self.size += len(chunk)
        self.update_extra(chunk)

    def update_extra(self, chunk: bytes) -> None:
        """Add ``chunk`` to the subclass's own checksums (nothing here)."""

    @classmethod
    def of_file(cls: type[D], path: str, **options: Any) -> D:
        """Digests of a whole local file (``options`` go to the constructor)."""
        digests = cls(**options)
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digests.update(chunk)
        return digests


def stream_sha256(stream: IO[bytes]) -> str:
    """The hex sha256 of what ``stream`` holds from where it stands, read ``CHUNK`` bytes at a time."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def spooled(stream: IO[bytes], digests: D, *, max_memory: int, prefix: str) -> Iterator[tuple[IO[bytes], D]]:
    """Read ``stream`` to its end into a spool (memory up to ``max_memory`` bytes, then a private temp
    file), hashing each chunk into ``digests``; yields the spool rewound to its start, and the digests.

    An error from ``stream`` propagates before anything is yielded, so nothing is uploaded; the spool
    is deleted when the block ends.
    """
    with tempfile.SpooledTemporaryFile(max_size=max_memory, prefix=prefix) as spool:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            digests.update(chunk)
            spool.write(chunk)
        spool.seek(0)
        yield spool, digests


class VerifyingReader(io.RawIOBase):
    """A download stream that hashes what passes through and checks it once the end is reached.

    ``next_chunk()`` returns the next bytes of the object (``b""`` at its end); ``problems(digests)``
    names every mismatch against what the store said (an empty list when all agree). A mismatch
    raises :class:`~cloudbridge.errors.StorageError` at the end of the stream, so a reader that
    consumes it whole never takes corrupted bytes for good ones. ``close`` calls ``on_close``.
    """

    def __init__(
        self,
        next_chunk: Callable[[], bytes],
        digests: StreamDigests,
        problems: Callable[[Any], list[str]],
        *,
        uri: str,
        provider: str,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._next_chunk = next_chunk
        self._digests = digests
        self._problems = problems
        self._uri = uri
        self._provider = provider
        self._on_close = on_close
        self._buffer = b""
        self._done = False

    def readable(self) -> bool:
        """Always ``True``."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer``; at the end of the object, raise ``StorageError`` on a digest mismatch."""
        while not self._buffer and not self._done:
            chunk = self._next_chunk()
            if not chunk:
                self._done = True
                found = self._problems(self._digests)
                if found:
                    from cloudbridge.errors import StorageError

                    raise StorageError(
                        f"integrity check failed reading {self._uri}: {', '.join(found)}", provider=self._provider
                    )
                break
            self._digests.update(chunk)
            self._buffer = chunk
        n = min(len(buffer), len(self._buffer))
        buffer[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def close(self) -> None:
        """Close the source too (``on_close``)."""
        try:
            if self._on_close is not None and not self.closed:
                self._on_close()
        finally:
            super().close()


def new_partial(target: str | os.PathLike[str]) -> str:
    """Create a private (0600, made with ``O_EXCL``) empty file beside ``target``, named
    ``.cb-partial-<pid>-…-<name>``, and return its path. The pid in the name is what
    ``LocalStorage.cleanup_partials`` reads: it spares the file while this process runs. Missing
    parent folders are created."""
    from cloudbridge.interfaces import PARTIAL_PREFIX

    directory, name = os.path.split(os.path.abspath(os.fspath(target)))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{PARTIAL_PREFIX}{os.getpid()}-", suffix=f"-{name[:80]}", dir=directory)
    os.close(fd)
    return tmp


@contextmanager
def partial_file(target: str | os.PathLike[str]) -> Iterator[str]:
    """A private temp file beside ``target`` (:func:`new_partial`) that becomes ``target`` when the
    block ends without error, and is deleted when it raises: a download is verified before it is
    visible, and a failed or corrupt one leaves nothing behind. Missing parent folders are created."""
    final = os.path.abspath(os.fspath(target))
    tmp = new_partial(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
