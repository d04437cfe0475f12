"""The digests S3 speaks: sha256 (cloudbridge's own), MD5 (a single-part ETag) and CRC32 (the
full-object checksum of a multipart upload, and each part's)."""

from __future__ import annotations

import base64
import hashlib
import zlib

from cloudbridge.transfers.digests import StreamDigests

__all__ = ["Digests", "crc32_b64"]


class Digests(StreamDigests):
    """sha256, MD5 (unless ``md5=False``: multipart ETags are not MD5s) and CRC32 of a byte stream."""

    def __init__(self, *, md5: bool = True, part_size: int = 0) -> None:
        super().__init__()
        self.md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self.crc32 = 0
        #: With ``part_size``: the CRC32 of each ``part_size`` slice, for a multipart upload's parts.
        self.part_size = part_size
        self.part_crc32s: list[int] = []
        self._part_fill = 0

    def update_extra(self, chunk: bytes) -> None:
        """Add ``chunk`` to the MD5 and the CRC32 (and to the parts' CRC32s)."""
        if self.md5 is not None:
            self.md5.update(chunk)
        self.crc32 = zlib.crc32(chunk, self.crc32)
        view = memoryview(chunk)
        while self.part_size and len(view):
            if self._part_fill == 0:
                self.part_crc32s.append(0)
            take = min(len(view), self.part_size - self._part_fill)
            self.part_crc32s[-1] = zlib.crc32(view[:take], self.part_crc32s[-1])
            self._part_fill = (self._part_fill + take) % self.part_size
            view = view[take:]

    @property
    def crc32_b64(self) -> str:
        """The CRC32 as S3 writes it: base64 of the 4 big-endian bytes."""
        return crc32_b64(self.crc32)

    @property
    def sha256_b64(self) -> str:
        """The sha256 as S3 writes it (base64)."""
        return base64.b64encode(self.sha256.digest()).decode()


def crc32_b64(crc: int) -> str:
    """A CRC32 as S3 writes it (``x-amz-checksum-crc32``): base64 of its 4 big-endian bytes."""
    return base64.b64encode(crc.to_bytes(4, "big")).decode()
