"""``gs://`` storage on Google Cloud Storage: crc32c integrity, resumable uploads, parallel downloads.

* **Uploads** are spooled (memory up to ``chunk_size``, then a temp file) while their crc32c and
  sha256 are computed, so a failing source uploads nothing. Objects up to ``chunk_size`` go up in
  one request carrying the crc32c (GCS verifies it on receipt); larger ones through a *resumable
  upload session* in ``chunk_size`` pieces, where a chunk that fails is resent from the last byte
  GCS acknowledged (google-resumable-media). Either way the stored object's crc32c must equal the
  local one, else the object is deleted and :class:`~cloudbridge.errors.StorageError` raised. The
  content's sha256 travels as metadata ``sha256`` (``ObjectInfo.checksum``).
* **Downloads** of objects over ``chunk_size`` are ``max_concurrency`` ranged GETs pinned to the
  object's generation (an overwrite meanwhile fails the download instead of mixing versions), into a
  temp file beside the target; the file must match the stored crc32c (and sha256 when known) before
  it is renamed into place. A corrupted object is refused. ``open_read`` checks the crc32c when the
  stream is read to its end.
* **Listing** pages through ``objects.list`` (1,000 per page) with ``prefix``/``delimiter``.
* ``abort_incomplete`` has nothing to do: an abandoned resumable session stores nothing billable and
  expires after a week, so the default (0) applies.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, NoReturn

from cloudbridge.errors import BucketNotFound, InvalidURI, NotFound, StorageError
from cloudbridge.interfaces import Storage, URILike, as_uri
from cloudbridge.records import ObjectInfo
from cloudbridge.transfers.digests import CHUNK, StreamDigests, VerifyingReader, partial_file, spooled
from cloudbridge.uri import StorageURI
from cloudbridge_gcp.errors import gcp_errors, retry
from cloudbridge_gcp.session import GcpSession

__all__ = ["Digests", "GcsStorage"]

SHA256_META = "sha256"


class Digests(StreamDigests):
    """crc32c (what GCS verifies) and sha256 of a byte stream, updated chunk by chunk."""

    def __init__(self) -> None:
        import google_crc32c

        super().__init__()
        self._crc = google_crc32c.Checksum()

    def update_extra(self, chunk: bytes) -> None:
        """Add ``chunk`` to the crc32c."""
        self._crc.update(chunk)

    @property
    def crc32c_b64(self) -> str:
        """The crc32c as GCS writes it: base64 of the 4 big-endian bytes."""
        return base64.b64encode(self._crc.digest()).decode()


class GcsStorage(Storage):
    """:class:`~cloudbridge.interfaces.Storage` on Google Cloud Storage (``gs://bucket/key``)."""

    schemes = ("gs",)

    def __init__(self, session: GcpSession) -> None:
        self.session = session
        self.settings = session.settings
        self._buckets_seen: set[str] = set()

    @property
    def client(self) -> Any:
        """The ``google.cloud.storage.Client``."""
        return self.session.storage_client()

    @staticmethod
    def _object(uri: URILike) -> StorageURI:
        parsed = as_uri(uri)
        if parsed.scheme != "gs":
            raise InvalidURI(f"{parsed} is not a gs:// URI")
        if not parsed.key or parsed.key.endswith("/"):
            raise InvalidURI(f"{parsed} names a bucket or prefix, not an object")
        return parsed

    @staticmethod
    def _info(blob: Any, key: str) -> ObjectInfo:
        meta = blob.metadata or {}
        updated = blob.updated
        return ObjectInfo(
            uri=f"gs://{blob.bucket.name}/{blob.name}",
            key=key,
            size=int(blob.size or 0),
            mtime=updated.timestamp() if updated else None,
            etag=blob.crc32c or blob.etag or (str(blob.generation) if blob.generation else None),
            checksum=meta.get(SHA256_META),
        )

    def _blob(self, parsed: StorageURI) -> Any:
        """The stored blob with its metadata; :class:`NotFound` naming the object or the bucket."""
        with gcp_errors("read object metadata", resource=str(parsed), service="storage"):
            blob = self.client.bucket(parsed.bucket).get_blob(parsed.key, retry=retry(self.settings.timeout))
        if blob is None:
            self._raise_missing(parsed)
        return blob

    def _raise_missing(self, parsed: StorageURI, cause: BaseException | None = None) -> NoReturn:
        if parsed.bucket not in self._buckets_seen:
            with gcp_errors("check the bucket", resource=f"gs://{parsed.bucket}", service="storage"):
                found = self.client.lookup_bucket(parsed.bucket)
            if found is None:
                raise _missing_bucket(parsed.bucket) from cause
            self._buckets_seen.add(parsed.bucket)
        raise NotFound(f"no such object: {parsed}") from cause

    # ---- primitives ------------------------------------------------------------------------------
    def stat(self, uri: URILike) -> ObjectInfo:
        """Size, mtime, crc32c (as ``etag``) and, when known, sha256 of one object."""
        parsed = self._object(uri)
        return self._info(self._blob(parsed), parsed.key.rsplit("/", 1)[-1])

    def list(self, uri: URILike, recursive: bool = True) -> Iterator[ObjectInfo]:
        """Objects under the prefix ``uri``, sorted by key (``objects.list`` pages of 1,000).

        ``recursive=False`` lists with ``delimiter='/'``: direct objects plus one zero-size entry per
        sub-prefix (key ending in ``/``).
        """
        parsed = as_uri(uri)
        if parsed.scheme != "gs":
            raise InvalidURI(f"{parsed} is not a gs:// URI")
        prefix = parsed.key.rstrip("/") + "/" if parsed.key else ""
        found: list[ObjectInfo] = []
        try:
            with gcp_errors("list objects", resource=f"gs://{parsed.bucket}/{prefix}", service="storage"):
                pages = self.client.list_blobs(parsed.bucket, prefix=prefix, delimiter=None if recursive else "/",
                                               page_size=1000, retry=retry(self.settings.timeout))
                for blob in pages:
                    if blob.name.endswith("/") and not blob.size:
                        continue  # a "folder" placeholder made by the console, not an object
                    found.append(self._info(blob, blob.name[len(prefix):]))
                subs = sorted(pages.prefixes) if not recursive else []
        except NotFound as exc:  # objects.list answers 404 only when the bucket itself is missing
            raise _missing_bucket(parsed.bucket) from exc.__cause__
        found.extend(ObjectInfo(uri=f"gs://{parsed.bucket}/{sub}", key=sub[len(prefix):], size=0) for sub in subs)
        yield from sorted(found, key=lambda info: info.key)

    def open_read(self, uri: URILike) -> IO[bytes]:
        """A stream of the object's bytes (pinned to its generation; crc32c checked at the end)."""
        parsed = self._object(uri)
        blob = self._blob(parsed)
        reader = blob.open("rb", chunk_size=self.settings.chunk_size, if_generation_match=blob.generation)
        expected = blob.crc32c

        def next_chunk() -> bytes:
            with gcp_errors("read object", resource=str(parsed), service="storage"):
                return reader.read(CHUNK)

        def problems(digests: Digests) -> list[str]:
            return ["crc32c differs"] if expected and digests.crc32c_b64 != expected else []

        checked = VerifyingReader(next_chunk, Digests(), problems, uri=str(parsed), provider="gcp",
                                  on_close=reader.close)
        return io.BufferedReader(checked, buffer_size=CHUNK)

    def write_stream(self, uri: URILike, stream: IO[bytes], size: int | None = None) -> ObjectInfo:
        """Store ``stream`` at ``uri``; the object appears whole or not at all."""
        parsed = self._object(uri)
        with spooled(stream, Digests(), max_memory=self.settings.chunk_size, prefix="cb-gcs-") as (spool, digests):
            return self._put(parsed, spool, digests)

    def delete(self, uri: URILike) -> None:
        """Delete one object (a missing object is fine; a missing bucket is :class:`NotFound`)."""
        from google.api_core import exceptions as gx

        parsed = self._object(uri)
        try:
            with gcp_errors("delete object", resource=str(parsed), service="storage"):
                try:
                    self.client.bucket(parsed.bucket).delete_blob(parsed.key, retry=retry(self.settings.timeout))
                except gx.NotFound:
                    if self.client.lookup_bucket(parsed.bucket) is None:
                        raise
        except NotFound as exc:
            raise _missing_bucket(parsed.bucket) from exc.__cause__

    # ---- uploads ---------------------------------------------------------------------------------
    def _put(self, parsed: StorageURI, source: IO[bytes], digests: Digests) -> ObjectInfo:
        bucket = self.client.bucket(parsed.bucket)
        chunked = digests.size > self.settings.chunk_size
        blob = bucket.blob(parsed.key, chunk_size=self.settings.chunk_size if chunked else None)
        blob.metadata = {SHA256_META: digests.sha256.hexdigest()}
        blob.crc32c = digests.crc32c_b64
        try:
            with gcp_errors("upload object", resource=str(parsed), service="storage"):
                blob.upload_from_file(source, size=digests.size, checksum="crc32c", rewind=False,
                                      retry=retry(self.settings.timeout))
        except StorageError:
            raise
        except NotFound as exc:
            self._raise_missing(parsed, exc.__cause__)
        except Exception as exc:
            if type(exc).__name__ == "DataCorruption":
                raise StorageError(f"integrity check failed for {parsed}: GCS stored different bytes than were "
                                   "sent (crc32c); the object was removed", provider="gcp") from exc
            raise
        if blob.crc32c and blob.crc32c != digests.crc32c_b64:
            self._discard(parsed, f"crc32c of the stored object {blob.crc32c} != {digests.crc32c_b64} sent")
        if blob.size is not None and int(blob.size) != digests.size:
            self._discard(parsed, f"stored size {blob.size} != {digests.size} bytes sent")
        self._buckets_seen.add(parsed.bucket)
        return self._info(blob, parsed.key.rsplit("/", 1)[-1])

    def _discard(self, parsed: StorageURI, why: str) -> NoReturn:
        with gcp_errors("delete a corrupt upload", resource=str(parsed), service="storage"):
            self.client.bucket(parsed.bucket).delete_blob(parsed.key)
        raise StorageError(f"integrity check failed for {parsed}: {why}; the object was removed", provider="gcp")

    def upload(self, local_path: str | os.PathLike[str], uri: URILike) -> ObjectInfo:
        """Upload one file: hashed once, then one request or a resumable session read from disk."""
        path = os.fspath(local_path)
        if not os.path.isfile(path):
            raise NotFound(f"no such local file: {path}")
        parsed = self._object(uri)
        digests = Digests.of_file(path)
        with open(path, "rb") as handle:
            return self._put(parsed, handle, digests)

    # ---- downloads -------------------------------------------------------------------------------
    def download(self, uri: URILike, local_path: str | os.PathLike[str]) -> None:
        """Download (ranged GETs in parallel for large objects) into a temp file, verify, rename."""
        parsed = self._object(uri)
        blob = self._blob(parsed)
        with partial_file(local_path) as tmp:
            size = int(blob.size or 0)
            fd = os.open(tmp, os.O_WRONLY)
            try:
                os.ftruncate(fd, size)
                with gcp_errors("download object", resource=str(parsed), service="storage"):
                    self._fetch_ranges(blob, fd, size)
            finally:
                os.close(fd)
            self._verify_file(parsed, tmp, blob)

    def _fetch_ranges(self, blob: Any, fd: int, size: int) -> None:
        step = self.settings.chunk_size
        ranges = [(start, min(start + step, size) - 1) for start in range(0, size, step)]
        if not ranges:
            return

        def fetch(span: tuple[int, int]) -> None:
            start, end = span
            data = blob.download_as_bytes(start=start, end=end, if_generation_match=blob.generation, checksum=None,
                                          retry=retry(self.settings.timeout))
            if len(data) != end - start + 1:
                raise StorageError(f"short read of gs://{blob.bucket.name}/{blob.name} at byte {start}",
                                   provider="gcp")
            os.pwrite(fd, data, start)

        if len(ranges) == 1:
            fetch(ranges[0])
            return
        with ThreadPoolExecutor(min(self.settings.max_concurrency, len(ranges))) as pool:
            list(pool.map(fetch, ranges))

    @staticmethod
    def _verify_file(parsed: StorageURI, path: str, blob: Any) -> None:
        digests = Digests.of_file(path)
        problems = []
        if blob.size is not None and int(blob.size) != digests.size:
            problems.append(f"size {digests.size} != {blob.size}")
        if blob.crc32c and blob.crc32c != digests.crc32c_b64:
            problems.append("crc32c differs")
        sha = (blob.metadata or {}).get(SHA256_META)
        if sha and sha != digests.sha256.hexdigest():
            problems.append("sha256 differs")
        if problems:
            raise StorageError(f"integrity check failed downloading {parsed}: {', '.join(problems)}; "
                               "the object is corrupt or changed during the download", provider="gcp")


def _missing_bucket(bucket: str) -> BucketNotFound:
    """The error every backend raises for a missing bucket, with the command that creates it."""
    return BucketNotFound.of("gs", bucket, hint=f"create it: gcloud storage buckets create gs://{bucket}")
