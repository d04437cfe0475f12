"""``s3://`` storage: the AWS CRT (or boto3's transfer manager), end-to-end integrity checks, paginated listing.

Integrity (measured against moto 5.2, which stores but does not verify checksums):

* Objects below ``multipart_threshold`` go up in one ``PutObject`` carrying ``ChecksumSHA256`` (S3
  verifies it on receipt); the reply's checksum and ETag (the MD5 of a single-part object) are
  compared with the digests computed locally while reading the source.
* Larger objects go up as a multipart upload (through the CRT, or the transfer manager with
  ``max_concurrency`` parts in flight) with a ``FULL_OBJECT`` ``CRC32`` checksum; afterwards
  ``HeadObject`` must report the CRC32 of the whole content computed locally. The content's sha256
  travels as metadata ``x-amz-meta-sha256``.
* A mismatch deletes the object and raises :class:`~cloudbridge.errors.StorageError`.
* ``abort_incomplete`` aborts multipart uploads orphaned by a killed transfer (invisible, but
  billed); ``sync`` calls it on its destination prefix first.
* Downloads are checked against the stored sha256 / CRC32 / MD5, whichever the object has, before
  the file is renamed into place; ``open_read`` asks S3 for the checksum so botocore verifies it.

With ``awscrt`` installed (``cloudbridge-aws[crt]``), single-part uploads, all downloads, listings,
``HEAD`` s and deletes go through the AWS Common Runtime's S3 client instead of botocore, with the
same checks (:mod:`cloudbridge_aws.s3_crt`, :mod:`cloudbridge_aws.s3_wire`; ``CLOUDBRIDGE_AWS_CRT=0``
turns it off), multipart uploads included (:mod:`cloudbridge_aws.s3_multipart`); without it, boto3's
transfer manager does the multipart uploads and ranged downloads.

``ObjectInfo.etag`` is the S3 ETag (without quotes); ``ObjectInfo.checksum`` is the hex sha256 when
it is known (``stat`` of objects written by cloudbridge), else ``None``.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from typing import IO, Any, NoReturn

from cloudbridge.errors import BucketNotFound, InvalidURI, NotFound, StorageError
from cloudbridge.interfaces import Storage, URILike, as_uri
from cloudbridge.records import ObjectInfo
from cloudbridge.transfers.digests import spooled, stream_sha256
from cloudbridge.uri import StorageURI
from cloudbridge_aws.errors import aws_errors
from cloudbridge_aws.s3_digests import Digests
from cloudbridge_aws.s3_lane import CrtLane
from cloudbridge_aws.session import AwsSession

__all__ = ["Digests", "S3Storage"]

SHA256_META = "sha256"


def _b64_to_hex(value: str | None) -> str | None:
    return base64.b64decode(value).hex() if value else None


class S3Storage(CrtLane, Storage):
    """:class:`~cloudbridge.interfaces.Storage` on Amazon S3 (``s3://bucket/key``)."""

    schemes = ("s3",)

    def __init__(self, session: AwsSession) -> None:
        self.session = session
        self.settings = session.settings
        self._buckets_seen: set[str] = set()
        self._crt_client: Any = None

    def crt(self, bucket: str) -> Any:
        """The CRT transfer client (:mod:`cloudbridge_aws.s3_crt`) when installed, enabled and able
        to address ``bucket``; else ``None`` (botocore and s3transfer do the transfer)."""
        from cloudbridge_aws.s3_crt import CrtS3, crt_enabled

        if not crt_enabled():
            return None
        if self._crt_client is None:
            s = self.settings
            self._crt_client = CrtS3(self.session, s.multipart_chunksize, s.multipart_threshold)
        return self._crt_client if self._crt_client.serves(bucket) else None

    # ---- helpers ---------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The boto3 S3 client."""
        return self.session.client("s3")

    def _transfer_config(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        s = self.settings
        return TransferConfig(
            multipart_threshold=s.multipart_threshold,
            multipart_chunksize=s.multipart_chunksize,
            max_concurrency=s.max_concurrency,
            # Downloads queue at most 32 x 256 KiB (8 MiB) of parts waiting for the disk, not
            # s3transfer's default 100 (25 MiB): keeps a sync's memory bounded on a slow disk.
            max_io_queue=32,
            use_threads=True,
            # never s3transfer's CRT manager (boto3 may pick it on some EC2 types when awscrt is
            # installed): this path's checks are written for the classic one; see s3_crt instead
            preferred_transfer_client="classic",
        )

    @staticmethod
    def _object(uri: URILike) -> StorageURI:
        parsed = as_uri(uri)
        if parsed.scheme != "s3":
            raise InvalidURI(f"{parsed} is not an s3:// URI")
        if not parsed.key or parsed.key.endswith("/"):
            raise InvalidURI(f"{parsed} names a bucket or prefix, not an object")
        return parsed

    @staticmethod
    def _uri(bucket: str, key: str) -> str:
        return f"s3://{bucket}/{key}"

    def _info_from_head(self, bucket: str, key: str, head: dict[str, Any], rel: str | None = None) -> ObjectInfo:
        meta = head.get("Metadata") or {}
        checksum = meta.get(SHA256_META)
        if not checksum and head.get("ChecksumSHA256") and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
            checksum = _b64_to_hex(head["ChecksumSHA256"].split("-")[0])
        modified = head.get("LastModified")
        return ObjectInfo(
            uri=self._uri(bucket, key),
            key=rel if rel is not None else key.rsplit("/", 1)[-1],
            size=int(head.get("ContentLength", head.get("Size", 0))),
            mtime=modified.timestamp() if modified else None,
            etag=(head.get("ETag") or "").strip('"') or None,
            checksum=checksum,
        )

    def _head(self, bucket: str, key: str) -> dict[str, Any]:
        crt = self.crt(bucket)
        with aws_errors("read object metadata", resource=self._uri(bucket, key), bucket=bucket):
            if crt is not None:
                from cloudbridge_aws.s3_wire import head_object

                return head_object(crt, bucket, key)
            return self.client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")

    # ---- primitives ------------------------------------------------------------------------------
    def stat(self, uri: URILike) -> ObjectInfo:
        """Size, mtime, ETag and (when known) sha256 of one object; :class:`NotFound` when absent."""
        parsed = self._object(uri)
        return self._info_from_head(parsed.bucket, parsed.key, self.stat_head(parsed))

    def list(self, uri: URILike, recursive: bool = True) -> Iterator[ObjectInfo]:
        """Objects under the prefix ``uri``, sorted by key (``list_objects_v2`` pages of 1,000).

        ``recursive=False`` lists with ``Delimiter='/'``: direct objects plus one zero-size entry
        per sub-prefix (key ending in ``/``).
        """
        parsed = as_uri(uri)
        if parsed.scheme != "s3":
            raise InvalidURI(f"{parsed} is not an s3:// URI")
        prefix = parsed.key.rstrip("/") + "/" if parsed.key else ""
        if recursive:
            yield from self._list_pages(parsed.bucket, prefix, delimiter=None)
        else:
            yield from sorted(self._list_pages(parsed.bucket, prefix, delimiter="/"), key=lambda i: i.key)

    def _list_pages(self, bucket: str, prefix: str, delimiter: str | None) -> Iterator[ObjectInfo]:
        crt = self.crt(bucket)
        with aws_errors("list objects", resource=self._uri(bucket, prefix), bucket=bucket):
            if crt is not None:
                from cloudbridge_aws.s3_wire import list_objects

                entries: Iterator[dict[str, Any]] = list_objects(crt, bucket, prefix, delimiter)
            else:
                kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
                if delimiter:
                    kwargs["Delimiter"] = delimiter
                pages = self.client.get_paginator("list_objects_v2").paginate(**kwargs)
                entries = (e for page in pages for e in [*page.get("Contents", []), *page.get("CommonPrefixes", [])])
            for item in entries:
                if "Key" not in item:  # a sub-prefix of a listing with a delimiter
                    sub = item["Prefix"]
                    yield ObjectInfo(uri=self._uri(bucket, sub), key=sub[len(prefix) :], size=0)
                    continue
                key, size = item["Key"], int(item.get("Size", 0))
                if key.endswith("/") and size == 0:
                    continue  # a "folder" marker made by a console, not an object
                yield ObjectInfo(
                    uri=self._uri(bucket, key),
                    key=key[len(prefix) :],
                    size=size,
                    mtime=item["LastModified"].timestamp() if item.get("LastModified") else None,
                    etag=(item.get("ETag") or "").strip('"') or None,
                )

    def open_read(self, uri: URILike) -> IO[bytes]:
        """A stream of the object's bytes; botocore verifies the stored full-object checksum."""
        parsed = self._object(uri)
        try:
            with aws_errors("read object", resource=str(parsed), bucket=parsed.bucket):
                response = self.client.get_object(Bucket=parsed.bucket, Key=parsed.key, ChecksumMode="ENABLED")
        except NotFound as exc:
            self._raise_missing(parsed, exc)
        return response["Body"]

    def write_stream(self, uri: URILike, stream: IO[bytes], size: int | None = None) -> ObjectInfo:
        """Store ``stream`` at ``uri``; the object appears whole or not at all.

        The stream is spooled (in memory up to ``multipart_threshold``, then to a temp file) while
        its digests are computed, so a failing source uploads nothing and every part can be retried.
        """
        parsed = self._object(uri)
        threshold = self.settings.multipart_threshold
        with spooled(stream, Digests(), max_memory=threshold, prefix="cb-s3-") as (spool, digests):
            if digests.size < threshold:
                return self._put_small(parsed, spool.read(), digests)
            return self._put_multipart(parsed, spool, digests)

    def delete(self, uri: URILike) -> None:
        """Delete one object (a missing object is fine; a missing bucket is :class:`NotFound`)."""
        parsed = self._object(uri)
        crt = self.crt(parsed.bucket)
        with aws_errors("delete object", resource=str(parsed), bucket=parsed.bucket):
            if crt is not None:
                crt.call("DELETE", parsed.bucket, parsed.key, {}, "DeleteObject", "delete object")
            else:
                self.client.delete_object(Bucket=parsed.bucket, Key=parsed.key)

    def abort_incomplete(self, uri: URILike, older_than_s: float = 3600.0) -> int:
        """Abort the multipart uploads under the prefix ``uri`` initiated over ``older_than_s`` s ago.

        Their parts are invisible to :meth:`list` but stored and billed until aborted (a transfer
        killed mid-upload leaves one). Returns how many were aborted.
        """
        from cloudbridge_aws.s3_stale import abort_stale_uploads

        parsed = as_uri(uri)
        if parsed.scheme != "s3":
            raise InvalidURI(f"{parsed} is not an s3:// URI")
        return abort_stale_uploads(self, parsed, older_than_s)

    def checksum(self, uri: URILike) -> str:
        """The object's hex sha256: from one ``HEAD`` when cloudbridge stored it (the ``sha256``
        metadata, or a full-object SHA256), else by streaming and hashing the object.

        ``sync --checksum`` calls this for every object of equal size on both sides; a listing
        carries no sha256, and without this each comparison downloaded the whole object.
        """
        known = self.stat(uri).checksum
        if known and len(known) == 64:
            return known
        with self.open_read(uri) as stream:
            return stream_sha256(stream)

    def exists(self, uri: URILike) -> bool:
        """True when an object exists at ``uri`` (one HEAD; a missing bucket is ``False`` too)."""
        parsed = self._object(uri)
        try:
            self._head(parsed.bucket, parsed.key)
        except NotFound:
            return False
        return True

    # ---- uploads ---------------------------------------------------------------------------------
    def _put_small(self, parsed: StorageURI, data: bytes, digests: Digests) -> ObjectInfo:
        with aws_errors("upload object", resource=str(parsed), bucket=parsed.bucket):
            response = self.client.put_object(
                Bucket=parsed.bucket,
                Key=parsed.key,
                Body=data,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=digests.sha256_b64,
            )
        return self._verified_small(parsed, digests, response.get("ETag"), response.get("ChecksumSHA256"))

    def _verified_small(self, parsed: StorageURI, digests: Digests, etag: str | None, stored: str | None) -> ObjectInfo:
        """Compare a single-part PUT's reply (ETag, stored SHA256) with the digests of what was sent."""
        etag = (etag or "").strip('"')
        md5 = digests.md5.hexdigest() if digests.md5 is not None else None
        if (stored and stored != digests.sha256_b64) or (md5 and etag and "-" not in etag and etag != md5):
            self._discard(parsed, f"S3 stored different bytes than were sent (ETag {etag})")
        return self._info_of_sent(parsed, digests, etag)

    @staticmethod
    def _info_of_sent(parsed: StorageURI, digests: Digests, etag: str | None) -> ObjectInfo:
        """The ``ObjectInfo`` of an upload whose reply vouched for the bytes sent (``digests``)."""
        return ObjectInfo(
            uri=str(parsed),
            key=parsed.key.rsplit("/", 1)[-1],
            size=digests.size,
            etag=etag or None,
            checksum=digests.sha256.hexdigest(),
        )

    def _put_multipart(self, parsed: StorageURI, source: Any, digests: Digests) -> ObjectInfo:
        extra = {
            "ChecksumAlgorithm": "CRC32",
            "ChecksumType": "FULL_OBJECT",
            "Metadata": {SHA256_META: digests.sha256.hexdigest()},
        }
        with aws_errors("upload object", resource=str(parsed), bucket=parsed.bucket):
            if isinstance(source, str):
                self.client.upload_file(
                    source, parsed.bucket, parsed.key, ExtraArgs=extra, Config=self._transfer_config()
                )
            else:
                self.client.upload_fileobj(
                    source, parsed.bucket, parsed.key, ExtraArgs=extra, Config=self._transfer_config()
                )
        return self._verified_multipart(parsed, digests)

    def _verified_multipart(
        self, parsed: StorageURI, digests: Digests, completed: tuple[str, str] | None = None
    ) -> ObjectInfo:
        """After a multipart upload, the stored full-object CRC32 must be ours: from ``completed``
        (``(CRC32, ETag)`` of the CompleteMultipartUpload reply, when S3 put them there), else from a
        ``HeadObject``, which must report our size too."""
        if completed is not None:
            self._check_crc32(parsed, digests, completed[0])
            return self._info_of_sent(parsed, digests, completed[1])
        head = self._head(parsed.bucket, parsed.key)
        full = head.get("ChecksumType") == "FULL_OBJECT"
        self._check_crc32(parsed, digests, head.get("ChecksumCRC32") if full else None)
        if int(head.get("ContentLength", -1)) != digests.size:
            self._discard(parsed, f"stored size {head.get('ContentLength')} != {digests.size} bytes sent")
        return self._info_from_head(parsed.bucket, parsed.key, head)

    def _check_crc32(self, parsed: StorageURI, digests: Digests, stored: str | None) -> None:
        """Delete the object and raise when S3's full-object CRC32 (if it reported one) is not ours."""
        if stored is not None and stored.split("-")[0] != digests.crc32_b64:
            self._discard(parsed, f"CRC32 of the stored object {stored} != {digests.crc32_b64} computed locally")

    def _discard(self, parsed: StorageURI, why: str) -> None:
        self.delete(parsed)
        raise StorageError(f"integrity check failed for {parsed}: {why}; the object was removed", provider="aws")

    # ---- fast paths ------------------------------------------------------------------------------
    def upload(self, local_path: str | os.PathLike[str], uri: URILike) -> ObjectInfo:
        """Upload one file: hashed once, then one PUT or a parallel multipart upload read from disk."""
        path = os.fspath(local_path)
        if not os.path.isfile(path):
            raise NotFound(f"no such local file: {path}")
        parsed = self._object(uri)
        small = os.path.getsize(path) < self.settings.multipart_threshold
        crt = self.crt(parsed.bucket)
        if crt is not None and small:
            from cloudbridge_aws.s3_crt import crt_put_small

            done = crt_put_small(self, crt, parsed, path)
            if done is not None:
                return done
        if crt is None and not small:
            self.session.prefetch_client("s3")  # built while the file is hashed (hashlib frees the GIL)
        parts = self.settings.multipart_chunksize if crt is not None and not small else 0
        digests = Digests.of_file(path, md5=small, part_size=parts)
        if digests.size < self.settings.multipart_threshold:
            with open(path, "rb") as handle:
                return self._put_small(parsed, handle.read(), digests)
        if crt is not None and digests.part_crc32s:
            from cloudbridge_aws.s3_multipart import completed_checksum, crt_multipart_upload

            with aws_errors("upload object", resource=str(parsed), bucket=parsed.bucket):
                completed = completed_checksum(crt_multipart_upload(self, crt, parsed, path, digests))
            return self._verified_multipart(parsed, digests, completed)
        return self._put_multipart(parsed, path, digests)

    def download(self, uri: URILike, local_path: str | os.PathLike[str]) -> None:
        """Download into a temp file, verify it against the stored digests, then rename into place.

        One ``GetObject`` serves an object below ``multipart_threshold`` (its reply headers carry
        the digests, so no ``HeadObject`` is needed); a larger one is fetched with parallel ranged
        GETs pinned to the ETag of that first reply (see :mod:`cloudbridge_aws.s3_download`).
        """
        from cloudbridge_aws.s3_download import download_verified

        parsed = self._object(uri)
        download_verified(self, parsed, os.path.abspath(os.fspath(local_path)))

    def stat_head(self, parsed: StorageURI) -> dict[str, Any]:
        """The raw ``HeadObject`` reply (with checksums) of an object; :class:`NotFound` when absent."""
        try:
            return self._head(parsed.bucket, parsed.key)
        except NotFound as exc:
            self._raise_missing(parsed, exc)

    def _raise_missing(self, parsed: StorageURI, exc: NotFound) -> NoReturn:
        """Re-raise a 404 as "no such object", or as "no such bucket" when the bucket is missing.

        ``HeadObject`` answers a bare 404 for both, so the bucket is checked (once per storage).
        """
        if parsed.bucket not in self._buckets_seen:
            try:
                crt = self.crt(parsed.bucket)
                with aws_errors("check the bucket", bucket=parsed.bucket):
                    if crt is not None:
                        crt.call("HEAD", parsed.bucket, "", {}, "HeadBucket", "check the bucket")
                    else:
                        self.client.head_bucket(Bucket=parsed.bucket)
            except NotFound as missing:
                raise BucketNotFound.of(
                    "s3", parsed.bucket, hint=f"create it: aws s3 mb s3://{parsed.bucket}"
                ) from missing.__cause__
            self._buckets_seen.add(parsed.bucket)
        raise NotFound(f"no such object: {parsed}") from exc.__cause__
