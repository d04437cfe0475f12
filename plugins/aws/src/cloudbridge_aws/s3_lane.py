"""The sync engine's async lane for S3 (:mod:`cloudbridge.transfers.inflight`), through the AWS CRT.

:class:`CrtLane` gives :class:`~cloudbridge_aws.storage.S3Storage` ``start_upload`` /
``start_download``: a small object's verified PUT or GET, started without a thread, with up to
``max_inflight`` requests in flight (the CRT needs no thread per request). Large objects, buckets
the CRT cannot address and an installation without ``awscrt`` are declined (``None``), and the
engine's thread pool copies them as before.
"""

from __future__ import annotations

import os
from typing import Any

from cloudbridge.records import ObjectInfo
from cloudbridge.uri import StorageURI

__all__ = ["CrtLane"]


class CrtLane:
    """``start_upload``/``start_download`` for a storage with ``settings``, ``crt()`` and ``_object()``."""

    settings: Any

    def crt(self, bucket: str) -> Any:  # pragma: no cover - S3Storage's
        raise NotImplementedError

    def _object(self, uri: Any) -> StorageURI:  # pragma: no cover - S3Storage's
        raise NotImplementedError

    @property
    def inflight_default(self) -> int:
        """Requests in flight for many small objects (``max_inflight``; the CRT needs no thread each)."""
        return self.settings.max_inflight

    def start_upload(self, local_path: str, uri: StorageURI, done: Any) -> Any:
        """Start a small file's verified PUT through the CRT; ``None`` (declined) without it or when large."""
        crt = self.crt(uri.bucket)
        if crt is None or os.path.getsize(local_path) >= self.settings.multipart_threshold:
            return None
        from cloudbridge_aws.s3_crt import crt_start_upload

        return crt_start_upload(self, crt, self._object(uri), local_path, done)

    def start_download(self, info: ObjectInfo, local_path: str, done: Any) -> Any:
        """Start a small object's verified GET into ``local_path``; ``None`` (declined) without the CRT
        or for an object a listing showed at ``multipart_threshold`` or more."""
        parsed = self._object(info.uri)
        crt = None if info.size >= self.settings.multipart_threshold else self.crt(parsed.bucket)
        if crt is None:
            return None
        from cloudbridge_aws.s3_crt import crt_start_download

        return crt_start_download(self, crt, parsed, local_path, done)

