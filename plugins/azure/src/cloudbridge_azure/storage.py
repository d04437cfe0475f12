"""``az://account/container/key`` storage on Azure Blob: block uploads, MD5 integrity, paged listing.

Integrity (checked against Azurite 3):

* Every request body carries a transactional ``Content-MD5`` (``validate_content=True``): the
  service refuses a Put Blob or Put Block whose bytes changed in flight.
* The MD5 of the whole content (computed locally while the source is read) is stored as the blob's
  ``Content-MD5`` property, and its sha256 as metadata ``sha256``.
* Blobs up to ``single_put_size`` go up in one Put Blob; larger ones as blocks of ``block_size``,
  ``max_concurrency`` in flight, committed by one Put Block List: the blob appears whole or not at all.
* Reads and downloads recompute the MD5 (and sha256 where recorded) and refuse a blob whose bytes do
  not match: :class:`~cloudbridge.errors.StorageError`, and no file appears.
* Listing follows the service's continuation markers (``list_page_size`` blobs per page).

``ObjectInfo.etag`` is the blob's ETag (without quotes); ``ObjectInfo.checksum`` the hex sha256 when
cloudbridge wrote the blob. Uncommitted blocks of an interrupted upload are invisible and removed by
the service after seven days, so :meth:`abort_incomplete` keeps the default (nothing to do).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Iterator
from typing import IO, Any, NoReturn

from cloudbridge.errors import BucketNotFound, InvalidURI, NotFound, StorageError
from cloudbridge.interfaces import Storage, URILike, as_uri
from cloudbridge.records import ObjectInfo
from cloudbridge.transfers.digests import CHUNK, StreamDigests, VerifyingReader, partial_file, spooled
from cloudbridge.uri import StorageURI
from cloudbridge_azure.auth import AzureClients
from cloudbridge_azure.errors import azure_errors, error_code

__all__ = ["BlobStorage", "Digests"]

SHA256_META = "sha256"


class Digests(StreamDigests):
    """MD5 (what Blob storage verifies) and sha256 of a byte stream, updated chunk by chunk."""

    def __init__(self) -> None:
        super().__init__()
        self.md5 = hashlib.md5(usedforsecurity=False)

    def update_extra(self, chunk: bytes) -> None:
        """Add ``chunk`` to the MD5."""
        self.md5.update(chunk)


def _problems(digests: Digests, props: Any) -> list[str]:
    """What differs between the bytes read (``digests``) and the blob's recorded size and digests."""
    problems = []
    if props.size is not None and int(props.size) != digests.size:
        problems.append(f"size {digests.size} != {props.size}")
    stored_md5 = getattr(props.content_settings, "content_md5", None)
    if stored_md5 and bytes(stored_md5) != digests.md5.digest():
        problems.append("MD5 differs")
    sha = (props.metadata or {}).get(SHA256_META)
    if sha and sha != digests.sha256.hexdigest():
        problems.append("sha256 differs")
    return problems


class BlobStorage(Storage):
    """:class:`~cloudbridge.interfaces.Storage` on Azure Blob storage (``az://account/container/key``)."""

    schemes = ("az",)

    def __init__(self, clients: AzureClients) -> None:
        self.clients = clients
        self.settings = clients.settings
        self._containers_seen: set[str] = set()

    # ---- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _parse(uri: URILike) -> StorageURI:
        parsed = as_uri(uri)
        if parsed.scheme != "az":
            raise InvalidURI(f"{parsed} is not an az:// URI")
        return parsed

    def _object(self, uri: URILike) -> StorageURI:
        parsed = self._parse(uri)
        if not parsed.key or parsed.key.endswith("/"):
            raise InvalidURI(f"{parsed} names a container or prefix, not a blob")
        return parsed

    def container_client(self, bucket: str) -> Any:
        """The ``ContainerClient`` of ``account/container``."""
        account, container = bucket.split("/", 1)
        return self.clients.blob_service(account).get_container_client(container)

    def _blob(self, parsed: StorageURI) -> Any:
        return self.container_client(parsed.bucket).get_blob_client(parsed.key)

    @staticmethod
    def _info(uri: str, key: str, props: Any) -> ObjectInfo:
        modified = getattr(props, "last_modified", None)
        return ObjectInfo(
            uri=uri,
            key=key,
            size=int(props.size or 0),
            mtime=modified.timestamp() if modified else None,
            etag=(props.etag or "").strip('"') or None,
            checksum=(props.metadata or {}).get(SHA256_META),
        )

    def _missing(self, parsed: StorageURI, exc: BaseException) -> NoReturn:
        """A 404 as "no such container" (with the command that creates it) or "no such blob"."""
        if error_code(exc) == "ContainerNotFound":
            account, container = parsed.bucket.split("/", 1)
            raise BucketNotFound.of(
                "az", parsed.bucket,
                hint=f"create it: az storage container create --account-name {account} --name {container}",
            ) from exc
        raise NotFound(f"no such object: {parsed}") from exc

    # ---- primitives ------------------------------------------------------------------------------
    def stat(self, uri: URILike) -> ObjectInfo:
        """Size, mtime, ETag and (when written by cloudbridge) sha256 of one blob."""
        from azure.core.exceptions import ResourceNotFoundError

        parsed = self._object(uri)
        try:
            with azure_errors("read blob properties", resource=str(parsed)):
                props = self._blob(parsed).get_blob_properties()
        except NotFound as exc:
            if isinstance(exc.__cause__, ResourceNotFoundError):
                self._missing(parsed, exc.__cause__)
            raise
        return self._info(str(parsed), parsed.key.rsplit("/", 1)[-1], props)

    def list(self, uri: URILike, recursive: bool = True) -> Iterator[ObjectInfo]:
        """Blobs under the prefix ``uri`` in name order, page by page (``list_page_size`` per page).

        ``recursive=False`` lists with delimiter ``/``: direct blobs plus one zero-size entry per
        sub-prefix (key ending in ``/``). A missing prefix yields nothing; a missing container is
        :class:`BucketNotFound`, as a missing bucket is on every backend.
        """
        parsed = self._parse(uri)
        prefix = parsed.key.rstrip("/") + "/" if parsed.key else ""
        base = f"az://{parsed.bucket}/"
        container = self.container_client(parsed.bucket)
        page_size = self.settings.list_page_size
        try:
            with azure_errors("list blobs", resource=base + prefix):
                if recursive:
                    pages = container.list_blobs(name_starts_with=prefix or None, results_per_page=page_size)
                else:
                    pages = container.walk_blobs(name_starts_with=prefix or None, delimiter="/",
                                                 results_per_page=page_size)
                items = []
                for item in pages:
                    name = item.name
                    if not hasattr(item, "size"):  # a BlobPrefix
                        items.append(ObjectInfo(uri=base + name, key=name[len(prefix):], size=0))
                        continue
                    info = self._info(base + name, name[len(prefix):], item)
                    if recursive:
                        yield info
                    else:
                        items.append(info)
        except NotFound as exc:
            self._missing(parsed, exc.__cause__ or exc)
        yield from sorted(items, key=lambda i: i.key)

    def open_read(self, uri: URILike) -> IO[bytes]:
        """A stream of the blob's bytes; reading to the end checks its MD5/sha256."""
        from azure.core.exceptions import ResourceNotFoundError

        parsed = self._object(uri)
        try:
            with azure_errors("read blob", resource=str(parsed)):
                downloader = self._blob(parsed).download_blob(max_concurrency=1)
        except NotFound as exc:
            if isinstance(exc.__cause__, ResourceNotFoundError):
                self._missing(parsed, exc.__cause__)
            raise
        chunks = downloader.chunks()

        def next_chunk() -> bytes:
            with azure_errors("read blob", resource=str(parsed)):
                return next(chunks, b"")

        reader = VerifyingReader(next_chunk, Digests(), lambda digests: _problems(digests, downloader.properties),
                                 uri=str(parsed), provider="azure")
        return io.BufferedReader(reader, buffer_size=CHUNK)

    def write_stream(self, uri: URILike, stream: IO[bytes], size: int | None = None) -> ObjectInfo:
        """Store ``stream`` at ``uri``: spooled and hashed first, so a failing source uploads nothing."""
        parsed = self._object(uri)
        with spooled(stream, Digests(), max_memory=self.settings.single_put_size, prefix="cb-az-") as (spool, digests):
            return self._upload(parsed, spool, digests)

    def delete(self, uri: URILike) -> None:
        """Delete one blob (and its snapshots); a missing blob is fine, a missing container is not."""
        from azure.core.exceptions import ResourceNotFoundError

        parsed = self._object(uri)
        try:
            with azure_errors("delete blob", resource=str(parsed)):
                self._blob(parsed).delete_blob(delete_snapshots="include")
        except NotFound as exc:
            cause = exc.__cause__
            if isinstance(cause, ResourceNotFoundError) and error_code(cause) == "ContainerNotFound":
                self._missing(parsed, cause)

    # ---- uploads and downloads -------------------------------------------------------------------
    def _upload(self, parsed: StorageURI, source: IO[bytes], digests: Digests) -> ObjectInfo:
        from azure.storage.blob import ContentSettings

        blob = self._blob(parsed)
        with azure_errors("upload blob", resource=str(parsed)):
            try:
                result = blob.upload_blob(
                    source,
                    length=digests.size,
                    overwrite=True,
                    max_concurrency=self.settings.max_concurrency,
                    validate_content=True,
                    content_settings=ContentSettings(content_md5=bytearray(digests.md5.digest())),
                    metadata={SHA256_META: digests.sha256.hexdigest()},
                )
            except Exception as exc:
                if error_code(exc) == "ContainerNotFound":
                    self._missing(parsed, exc)
                raise
        stored_md5 = result.get("content_md5")
        if digests.size <= self.settings.single_put_size and stored_md5 and bytes(stored_md5) != digests.md5.digest():
            self._discard(parsed, "the service computed a different MD5 than the one of the bytes sent")
        modified = result.get("last_modified")
        return ObjectInfo(
            uri=str(parsed),
            key=parsed.key.rsplit("/", 1)[-1],
            size=digests.size,
            mtime=modified.timestamp() if modified else None,
            etag=(result.get("etag") or "").strip('"') or None,
            checksum=digests.sha256.hexdigest(),
        )

    def _discard(self, parsed: StorageURI, why: str) -> NoReturn:
        with azure_errors("delete a corrupt upload", resource=str(parsed)):
            self._blob(parsed).delete_blob()
        raise StorageError(f"integrity check failed for {parsed}: {why}; the blob was removed", provider="azure")

    def upload(self, local_path: str | os.PathLike[str], uri: URILike) -> ObjectInfo:
        """Upload one file: hashed once, then one Put Blob or parallel blocks read from disk."""
        path = os.fspath(local_path)
        if not os.path.isfile(path):
            raise NotFound(f"no such local file: {path}")
        parsed = self._object(uri)
        digests = Digests.of_file(path)
        with open(path, "rb") as handle:
            return self._upload(parsed, handle, digests)

    def download(self, uri: URILike, local_path: str | os.PathLike[str]) -> None:
        """Download with ``max_concurrency`` ranged reads; checked before the file appears."""
        from azure.core.exceptions import ResourceNotFoundError

        parsed = self._object(uri)
        with partial_file(local_path) as tmp:
            with open(tmp, "wb") as out:
                try:
                    with azure_errors("download blob", resource=str(parsed)):
                        downloader = self._blob(parsed).download_blob(max_concurrency=self.settings.max_concurrency)
                        downloader.readinto(out)
                except NotFound as exc:
                    if isinstance(exc.__cause__, ResourceNotFoundError):
                        self._missing(parsed, exc.__cause__)
                    raise
            problems = _problems(Digests.of_file(tmp), downloader.properties)
            if problems:
                raise StorageError(
                    f"integrity check failed downloading {parsed}: {', '.join(problems)}", provider="azure"
                )


def md5_b64(data: bytes) -> str:
    """Base64 MD5 of ``data``, as Azure writes ``Content-MD5``."""
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
