"""Optional fast path for S3 object transfers: the AWS Common Runtime's S3 client (``awscrt``).

Installed with ``pip install 'cloudbridge-aws[crt]'`` and then used automatically by
:class:`~cloudbridge_aws.storage.S3Storage` for uploads below ``multipart_threshold`` and for every
download (``CLOUDBRIDGE_AWS_CRT=0`` turns it off). Why: profiled with py-spy, a sync of many small
objects spent 3.5-7 ms of CPU per object inside botocore (serialising, signing, parsing the reply),
all under the GIL. The CRT builds, signs, sends and retries requests, and splits a large GET into
ranged parts, in C threads; Python hands it a request line, a few headers and a body, and reads the
reply's headers.

The checks are those of the botocore path: a small upload sends the bytes it hashed, with their
``x-amz-checksum-sha256`` (which S3 verifies), and the reply's ETag (MD5) and checksum are compared
with the local digests (a mismatch deletes the object); a download lands in a temp file that is
checked against the stored sha256 / CRC32 / MD5 before the caller renames it (the CRT also checks any
full-object checksum S3 reports, and pins every ranged part to the first reply's ETag). The CRT
retries a failed request or part itself; what still fails becomes a :mod:`cloudbridge.errors`
exception through :func:`~cloudbridge_aws.errors.translate`, so the sync engine retries it as usual.

Multipart uploads go through plain CRT requests (:mod:`cloudbridge_aws.s3_multipart`), not the
CRT's own multipart code, which refuses S3-compatible servers whose CreateMultipartUpload reply is
not rooted at ``InitiateMultipartUploadResult`` (``rclone serve s3`` answers
``<InitiateMultipartUpload>``: AWS_ERROR_S3_MISSING_UPLOAD_ID). Large downloads go through the CRT's
parallel ranged GETs.
Bucket names with dots, ARNs and S3 Express buckets also stay on
botocore, whose addressing rules cover them.
"""

from __future__ import annotations

import io
import os
import re
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from cloudbridge.errors import StorageError, TransientError
from cloudbridge_aws.errors import translate

if TYPE_CHECKING:
    from cloudbridge_aws.session import AwsSession

__all__ = ["CrtS3", "crt_enabled"]

_PLAIN_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_crt_found: bool | None = None


def crt_enabled() -> bool:
    """True when ``awscrt`` is installed and ``CLOUDBRIDGE_AWS_CRT`` is not ``0``."""
    global _crt_found
    if os.environ.get("CLOUDBRIDGE_AWS_CRT", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if _crt_found is None:
        import importlib.util

        _crt_found = importlib.util.find_spec("awscrt") is not None
    return _crt_found


class CrtS3:
    """One ``awscrt.s3.S3Client`` for a session: PUT and GET of whole objects, replies as headers.

    Built lazily. Explicit or environment keys, the region and a plain endpoint are read without
    botocore (:mod:`cloudbridge_aws.s3_wire`: importing boto3 and building its S3 client would be
    most of a short command's run); otherwise the credentials come from botocore's chain, refreshed
    through it (SSO and assumed roles keep working), and the endpoint from its S3 client. A custom
    endpoint is addressed path-style, ``*.amazonaws.com`` virtual-hosted.
    """

    def __init__(self, session: AwsSession, part_size: int, threshold: int) -> None:
        self._session = session
        self._part_size = part_size
        self._threshold = threshold
        self._client: Any = None
        self._lock = threading.Lock()
        from cloudbridge_aws.s3_wire import endpoint_without_botocore

        endpoint = endpoint_without_botocore(session.settings) or session.client("s3").meta.endpoint_url
        self._endpoint = urlsplit(endpoint)
        self._virtual = self._endpoint.hostname is not None and self._endpoint.hostname.endswith(".amazonaws.com")

    def serves(self, bucket: str) -> bool:
        """Whether ``bucket`` can go through the CRT (a plain DNS-style name)."""
        return bool(_PLAIN_BUCKET.match(bucket)) and not bucket.endswith("--x-s3")

    def _crt(self, action: str = "transfer objects") -> Any:
        with self._lock:
            if self._client is None:
                from awscrt.auth import AwsCredentials, AwsCredentialsProvider
                from awscrt.s3 import S3Client, S3RequestTlsMode, create_default_s3_signing_config

                from cloudbridge_aws.s3_wire import static_credentials

                fixed = static_credentials(self._session.settings)
                if fixed is not None:
                    provider = AwsCredentialsProvider.new_static(*fixed)
                else:
                    credentials = self._session.boto_session.get_credentials()
                    if credentials is None:
                        from botocore.exceptions import NoCredentialsError

                        raise translate(NoCredentialsError(), action)

                    def current() -> Any:
                        frozen = credentials.get_frozen_credentials()
                        return AwsCredentials(frozen.access_key, frozen.secret_key, frozen.token)

                    provider = AwsCredentialsProvider.new_delegate(current)
                tls = S3RequestTlsMode.ENABLED if self._endpoint.scheme == "https" else S3RequestTlsMode.DISABLED
                region = self._session.settings.region or self._session.region
                self._client = S3Client(
                    region=region,
                    signing_config=create_default_s3_signing_config(region=region, credential_provider=provider),
                    tls_mode=tls,
                    part_size=self._part_size,
                    multipart_upload_threshold=self._threshold,
                    connect_timeout_ms=int(self._session.settings.connect_timeout * 1000),
                    # the CRT sizes its connection pool from the throughput target (10 Gbps: about 30
                    # connections); many small objects want one connection per request in flight,
                    # so the target is set high and the pool capped at ``max_inflight``
                    throughput_target_gbps=100.0,
                    max_active_connections_override=self._session.settings.max_inflight,
                )
            return self._client

    def _target(self, bucket: str, key: str) -> tuple[str, str]:
        """(Host header, request path) of an object, or of the bucket itself when ``key`` is empty."""
        quoted = quote(key, safe="/~")
        base = self._endpoint.path.rstrip("/")
        if self._virtual:
            return f"{bucket}.{self._endpoint.netloc}", f"{base}/{quoted}"
        return self._endpoint.netloc, f"{base}/{bucket}/{quoted}" if key else f"{base}/{bucket}"

    def call(
        self,
        method: str,
        bucket: str,
        key: str,
        query: dict[str, str],
        operation: str,
        action: str,
        *,
        headers: list[tuple[str, str]] | tuple[()] = (),
        body: Any = None,
        size: int = 0,
    ) -> tuple[dict[str, str], bytes]:
        """One S3 REST call (a listing, a HEAD, a DELETE; with ``body``, a stream of ``size`` bytes,
        an upload part or a completion): the reply's headers (lower-cased) and body.

        ``operation`` is the S3 API name (the CRT checks a 200 reply's body for an error, as S3 asks);
        a failure raises the :mod:`cloudbridge.errors` exception for ``action``.
        """
        return self.wait(
            lambda done: self.start_call(
                method, bucket, key, query, operation, action, done, headers=headers, body=body, size=size
            )
        )

    def start_call(
        self,
        method: str,
        bucket: str,
        key: str,
        query: dict[str, str],
        operation: str,
        action: str,
        done: Any,
        *,
        headers: list[tuple[str, str]] | tuple[()] = (),
        body: Any = None,
        size: int = 0,
    ) -> Any:
        """:meth:`call` without waiting: ``done(finish)``, and ``finish()`` returns ``(headers, body)``."""
        from awscrt.http import HttpHeaders, HttpRequest
        from awscrt.s3 import S3RequestType

        from cloudbridge_aws.s3_wire import query_string

        host, target = self._target(bucket, key)
        request = HttpRequest(
            method,
            target + query_string(query),
            HttpHeaders([("Host", host), ("Content-Length", str(size if body is not None else 0)), *headers]),
            body_stream=body,
        )
        chunks: list[bytes] = []

        def on_body(chunk: Any, **_: Any) -> None:
            chunks.append(bytes(chunk))

        def ended(finish: Any) -> None:
            done(lambda: (finish(), b"".join(chunks)))

        return self.start(
            S3RequestType.DEFAULT, request, bucket, key, action, ended, operation_name=operation, on_body=on_body
        )

    @staticmethod
    def wait(begin: Any) -> Any:
        """Start a request with ``begin(done)`` and block until it ended; then run its ``finish()`` on
        this thread (the checks, and the translation of an error, never run on a CRT thread)."""
        ended: Future[Any] = Future()
        handle = begin(ended.set_result)
        try:
            return ended.result()()
        finally:
            del handle

    def start(self, kind: Any, request: Any, bucket: str, key: str, action: str, done: Any, **kwargs: Any) -> Any:
        """Start one request; ``done(finish)`` is called once, on a CRT thread, when it ended, and
        ``finish()`` returns the reply's headers (lower-cased) or raises the translated error."""
        replied: dict[str, str] = {}

        def on_headers(status_code: int, headers: list[tuple[str, str]], **_: Any) -> None:
            if not replied and 200 <= status_code < 300:
                replied.update((name.lower(), value) for name, value in headers)

        def on_done(error: BaseException | None = None, **info: Any) -> None:
            if error is None:
                done(lambda: replied)
                return

            def fail() -> dict[str, str]:  # translated on the caller's thread, not the CRT's
                raise _translate(error, info, action, f"s3://{bucket}/{key}", bucket)

            done(fail)

        client = self._crt(action)
        return client.make_request(type=kind, request=request, on_headers=on_headers, on_done=on_done, **kwargs)

    def start_put(self, bucket: str, key: str, headers: dict[str, str], *, body: bytes, done: Any) -> Any:
        """One PutObject of ``body``: ``done(finish)`` as in :meth:`start`."""
        from awscrt.http import HttpHeaders, HttpRequest
        from awscrt.s3 import S3RequestType

        host, target = self._target(bucket, key)
        request = HttpRequest(
            "PUT",
            target,
            HttpHeaders([("Host", host), ("Content-Length", str(len(body))), *headers.items()]),
            body_stream=io.BytesIO(body),
        )
        return self.start(S3RequestType.PUT_OBJECT, request, bucket, key, "upload object", done)

    def start_get(self, bucket: str, key: str, path: str, *, done: Any) -> Any:
        """GetObject into the file ``path`` (split into ranged parts, each pinned to the first reply's
        ETag, when the object is large; the CRT checks any full-object checksum S3 reports):
        ``done(finish)`` as in :meth:`start`."""
        from awscrt.http import HttpHeaders, HttpRequest
        from awscrt.s3 import S3ChecksumConfig, S3RequestType

        host, target = self._target(bucket, key)
        request = HttpRequest("GET", target, HttpHeaders([("Host", host), ("Content-Length", "0")]))
        return self.start(
            S3RequestType.GET_OBJECT,
            request,
            bucket,
            key,
            "download object",
            done,
            recv_filepath=path,
            checksum_config=S3ChecksumConfig(validate_response=True),
        )


def _translate(error: BaseException, info: dict[str, Any], action: str, resource: str, bucket: str) -> Exception:
    """A :mod:`cloudbridge.errors` exception for a failed CRT request (the CRT error as its cause)."""
    status = info.get("status_code") or 0
    body = info.get("error_body") or b""
    if status >= 300:
        from botocore.exceptions import ClientError

        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        code = re.search(r"<Code>([^<]+)</Code>", text)
        message = re.search(r"<Message>([^<]*)</Message>", text)
        reply = {
            "Error": {"Code": code.group(1) if code else str(status), "Message": message.group(1) if message else ""},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        operation = info.get("error_operation_name") or "S3"
        said = ClientError(reply, operation)  # the cause users see: S3's own error code and message
        said.__cause__ = error
        translated = translate(said, action, resource=resource, bucket=bucket)
        translated.__cause__ = said
        return translated
    elif "CHECKSUM_MISMATCH" in getattr(error, "name", ""):
        why = "the bytes received do not match S3's checksum"
        translated = StorageError(f"integrity check failed downloading {resource}: {why}", provider="aws")
    else:
        name = getattr(error, "name", "") or str(error)
        translated = TransientError(f"could not {action} {resource}: {name}", provider="aws")
    translated.__cause__ = error
    return translated


def _small_put(storage: Any, parsed: Any, path: str) -> tuple[bytes, Any, dict[str, str]] | None:
    """The bytes of a file below ``multipart_threshold``, their digests and the checksum headers;
    ``None`` when the file has grown past the threshold."""
    from cloudbridge_aws.storage import Digests

    with open(path, "rb") as handle:
        data = handle.read(storage.settings.multipart_threshold)
    if len(data) >= storage.settings.multipart_threshold:
        return None
    digests = Digests()
    digests.update(data)
    return data, digests, {"x-amz-sdk-checksum-algorithm": "SHA256", "x-amz-checksum-sha256": digests.sha256_b64}


def crt_put_small(storage: Any, crt: CrtS3, parsed: Any, path: str) -> Any:
    """:meth:`S3Storage.upload` of a file below ``multipart_threshold`` through the CRT, with the same
    checks as the botocore path; ``None`` when the file has grown past the threshold meanwhile.

    The file is read once: its digests and the bytes sent are the same bytes. S3 verifies the
    ``x-amz-checksum-sha256`` sent with them, and the reply's ETag (MD5) and checksum are compared.
    """
    small = _small_put(storage, parsed, path)
    if small is None:
        return None
    return crt.wait(lambda done: _start_checked_put(storage, crt, parsed, small, done))


def crt_start_upload(storage: Any, crt: CrtS3, parsed: Any, path: str, done: Any) -> Any:
    """:func:`crt_put_small` without waiting (the sync engine's async lane): ``done(finish)`` is called
    when the PUT ended, and ``finish()`` makes the same checks and returns the ``ObjectInfo``.
    ``None`` (declined) for a file at ``multipart_threshold`` or more."""
    small = _small_put(storage, parsed, path)
    if small is None:
        return None
    return _start_checked_put(storage, crt, parsed, small, done)


def _start_checked_put(
    storage: Any, crt: CrtS3, parsed: Any, small: tuple[bytes, Any, dict[str, str]], done: Any
) -> Any:
    """Start the PUT of ``small`` (from :func:`_small_put`); its ``finish()`` compares the reply's ETag
    and checksum with the digests (a mismatch deletes the object) and returns the ``ObjectInfo``."""
    data, digests, headers = small

    def ended(finish: Any) -> None:
        def verify() -> Any:
            reply = finish()
            return storage._verified_small(parsed, digests, reply.get("etag"), reply.get("x-amz-checksum-sha256"))

        done(verify)

    return crt.start_put(parsed.bucket, parsed.key, headers, body=data, done=ended)


def crt_start_download(storage: Any, crt: CrtS3, parsed: Any, path: str, done: Any) -> Any:
    """One GetObject into the existing file ``path`` without waiting; ``finish()`` checks the file
    against the reply's digests (as :func:`cloudbridge_aws.s3_download.download_verified` does)."""
    from cloudbridge.errors import NotFound
    from cloudbridge_aws.s3_download import check_digests, needs_md5
    from cloudbridge_aws.storage import Digests

    def ended(finish: Any) -> None:
        def verify() -> None:
            try:
                reply = reply_from_headers(finish())
            except NotFound as exc:
                storage._raise_missing(parsed, exc)
            check_digests(parsed, Digests.of_file(path, md5=needs_md5(reply)), reply)

        done(verify)

    return crt.start_get(parsed.bucket, parsed.key, path, done=ended)


def reply_from_headers(headers: dict[str, str]) -> dict[str, Any]:
    """A GetObject reply's headers (lower-cased) in the shape of botocore's parsed reply, for
    :func:`cloudbridge_aws.s3_download.check_digests`."""
    size = headers.get("content-length", "0")
    total = headers.get("content-range", "").rpartition("/")[2]
    reply: dict[str, Any] = {
        "ETag": headers.get("etag", ""),
        "ContentLength": int(total if total.isdigit() else size),
        "Metadata": {k[len("x-amz-meta-") :]: v for k, v in headers.items() if k.startswith("x-amz-meta-")},
    }
    for name in ("sha256", "crc32"):
        if f"x-amz-checksum-{name}" in headers:
            reply[f"Checksum{name.upper()}"] = headers[f"x-amz-checksum-{name}"]
    if "x-amz-checksum-type" in headers:
        reply["ChecksumType"] = headers["x-amz-checksum-type"]
    return reply
