"""A multipart upload through the CRT trusts the full-object CRC32 in S3's CompleteMultipartUpload
reply, and sends no ``HEAD`` when it is there.

Neither moto nor ``rclone serve s3`` puts the checksum in that reply (real S3 does, for a
``FULL_OBJECT`` upload), so this runs against a small S3 on 127.0.0.1 that speaks the real wire
format for the calls involved (Create, UploadPart, Complete, HEAD, DELETE), really stores the parts
and computes the CRC32 of what it stored, as S3 does. ``corrupt=True`` flips one stored byte: the
reply's CRC32 then differs from the one computed locally, and the object must be deleted.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import threading
import urllib.parse
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cloudbridge_aws.provider import AwsProvider
from cloudbridge_aws.settings import AwsSettings

from cloudbridge.errors import StorageError

pytestmark = pytest.mark.skipif(importlib.util.find_spec("awscrt") is None, reason="awscrt is not installed")


class MultipartS3:
    """Just enough S3 for one multipart upload, recording every request's method and path."""

    def __init__(self, *, corrupt: bool = False) -> None:
        self.requests: list[tuple[str, str]] = []
        self.parts: dict[int, bytes] = {}
        self.objects: dict[str, bytes] = {}
        self.posted: list[bytes] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _query(self) -> dict[str, str]:
                query = urllib.parse.urlsplit(self.path).query
                return {k: v[0] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()}

            def do_POST(self) -> None:
                fake.requests.append(("POST", self.path))
                body, query = self._body(), self._query()
                fake.posted.append(body)
                if "uploads" in query:
                    xml = "<InitiateMultipartUploadResult><UploadId>up-1</UploadId></InitiateMultipartUploadResult>"
                    return self._reply(200, xml.encode())
                data = b"".join(fake.parts[n] for n in sorted(fake.parts))
                if corrupt:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                key = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
                fake.objects[key] = data
                crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
                xml = (
                    "<CompleteMultipartUploadResult><Key>k</Key><ETag>&quot;abc-2&quot;</ETag>"
                    f"<ChecksumCRC32>{crc}</ChecksumCRC32><ChecksumType>FULL_OBJECT</ChecksumType>"
                    "</CompleteMultipartUploadResult>"
                )
                return self._reply(200, xml.encode())

            def do_PUT(self) -> None:
                fake.requests.append(("PUT", self.path))
                fake.parts[int(self._query()["partNumber"])] = self._body()
                self._reply(200, headers={"ETag": f'"part-{len(fake.parts)}"'})

            def do_HEAD(self) -> None:
                fake.requests.append(("HEAD", self.path))
                self._reply(404)

            def do_DELETE(self) -> None:
                fake.requests.append(("DELETE", self.path))
                key = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
                fake.objects.pop(key, None)
                self._reply(204)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def s3(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[MultipartS3]:
    monkeypatch.setenv("CLOUDBRIDGE_AWS_CRT", "1")
    fake = MultipartS3(corrupt=getattr(request, "param", False))
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def _storage(fake: MultipartS3) -> Any:
    settings = AwsSettings(region="us-east-1", endpoint_url=fake.endpoint, access_key_id="k", secret_access_key="s")
    return AwsProvider(settings).storage


def test_the_completion_reply_vouches_for_the_object_without_a_head(s3: MultipartS3, tmp_path: Path) -> None:
    payload = os.urandom(9 * 1024 * 1024 + 11)
    (tmp_path / "big.bin").write_bytes(payload)
    info = _storage(s3).upload(tmp_path / "big.bin", "s3://cb-mp/dir/big.bin")
    assert s3.objects["/cb-mp/dir/big.bin"] == payload, "the parts were sent whole and in order"
    assert [m for m, _ in s3.requests] == ["POST", "PUT", "PUT", "POST"], "no HEAD after the completion"
    assert info.size == len(payload) and info.etag == "abc-2"
    assert info.checksum == hashlib.sha256(payload).hexdigest()
    completion = s3.posted[-1]
    assert completion.count(b"<ChecksumCRC32>") == 2, "each part's CRC32 is listed in the completion"


@pytest.mark.parametrize("s3", [True], indirect=True, ids=["corrupt"])
def test_a_completion_reply_with_another_crc32_deletes_the_object(s3: MultipartS3, tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(9 * 1024 * 1024))
    with pytest.raises(StorageError, match="integrity check failed for s3://cb-mp/big.bin: CRC32"):
        _storage(s3).upload(tmp_path / "big.bin", "s3://cb-mp/big.bin")
    assert ("DELETE", "/cb-mp/big.bin") in s3.requests and "/cb-mp/big.bin" not in s3.objects
