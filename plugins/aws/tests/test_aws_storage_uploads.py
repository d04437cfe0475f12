"""Unfinished multipart uploads: ``S3Storage.abort_incomplete`` and ``sync`` cleaning up after a kill.

moto 5.2 lists multipart uploads but never truncates the listing (no ``max-uploads``, every upload
"initiated" on 2010-11-10), so pagination is checked against a small S3 server on 127.0.0.1 that
answers ``ListMultipartUploads`` in two pages of S3's documented XML and records the aborts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cloudbridge_aws.provider import AwsProvider
from cloudbridge_aws.settings import AwsSettings

from cloudbridge.transfers.sync import sync


def pending(client: Any, bucket: str, prefix: str = "") -> list[str]:
    """Keys of the multipart uploads still open under ``prefix``."""
    return [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])]


def test_abort_incomplete_only_under_the_prefix(provider: Any, bucket: str) -> None:
    client = provider.session.client("s3")
    for key in ("runs/a/part.bin", "runs/a/deep/er.bin", "runs/ab/sibling.bin", "other.bin"):
        client.create_multipart_upload(Bucket=bucket, Key=key)
    storage = provider.storage
    assert storage.abort_incomplete(f"s3://{bucket}/runs/a", older_than_s=1e10) == 0, "younger than the limit"
    assert storage.abort_incomplete(f"s3://{bucket}/runs/a/") == 2
    assert sorted(pending(client, bucket)) == ["other.bin", "runs/ab/sibling.bin"]
    assert storage.abort_incomplete(f"s3://{bucket}/runs/a") == 0, "nothing left there"
    assert storage.abort_incomplete(f"s3://{bucket}") == 2, "the bucket root covers every key"
    assert pending(client, bucket) == []


KILLED_UPLOAD = textwrap.dedent(
    """
    import os, sys, time
    from cloudbridge_aws.provider import AwsProvider
    from cloudbridge_aws.settings import AwsSettings

    endpoint, bucket, source, marker, crt = sys.argv[1:6]
    os.environ["CLOUDBRIDGE_AWS_CRT"] = crt
    provider = AwsProvider(
        AwsSettings(region="us-east-1", endpoint_url=endpoint, max_concurrency=1, max_part_buffers=1)
    )
    if crt == "0":  # s3transfer: stall botocore's request for part 2
        client = provider.session.client("s3")

        def stall(request, **_):
            if "partNumber=2" in request.url:
                open(marker, "w").close()
                time.sleep(120)

        client.meta.events.register("before-send.s3.UploadPart", stall)
    else:  # the CRT's own requests: stall while the CRT reads part 2 from the file
        from cloudbridge_aws import s3_multipart

        real_read = s3_multipart.FileSlice.readinto

        def stall_read(self, buffer):
            if self._start > 0:
                open(marker, "w").close()
                time.sleep(120)
            return real_read(self, buffer)

        s3_multipart.FileSlice.readinto = stall_read
    provider.storage.upload(source, f"s3://{bucket}/dst/big.bin")
    """
)


@pytest.mark.parametrize("crt", ["0", "1"], ids=["s3transfer", "crt"])
def test_sync_aborts_the_upload_a_killed_transfer_left(aws_env: Any, bucket: str, tmp_path: Path, crt: str) -> None:
    """A transfer killed between two parts leaves an open multipart upload (invisible, billed); the
    next ``sync`` to that prefix aborts it, and uploads the file whole."""
    source = tmp_path / "src" / "big.bin"
    source.parent.mkdir()
    source.write_bytes(os.urandom(17 * 1024 * 1024))
    marker = tmp_path / "part-2-started"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_UPLOAD, aws_env.endpoint, bucket, str(source), str(marker), crt],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            assert time.monotonic() < deadline, "the upload never reached its second part"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    client = aws_env.client("s3")
    assert pending(client, bucket) == ["dst/big.bin"], "the killed upload is still open"
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0, "and invisible to listings"

    result = sync(tmp_path / "src", f"s3://{bucket}/dst", progress=False)
    assert result.ok and result.aborted_uploads == 1
    assert pending(client, bucket) == []
    assert client.head_object(Bucket=bucket, Key="dst/big.bin")["ContentLength"] == source.stat().st_size


class PagedUploads:
    """S3 on 127.0.0.1 answering ``ListMultipartUploads`` one upload per page; records every request."""

    PAGES = [("dst/a.bin", "up-1"), ("dst/b.bin", "up-2")]

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append(("GET", self.path))
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)
                page = 1 if query.get("key-marker", [""])[0] == "dst/a.bin" else 0
                key, upload_id = fake.PAGES[page]
                truncated = page == 0
                body = (
                    '<?xml version="1.0" encoding="UTF-8"?>\n'
                    '<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                    "<Bucket>cb-paged</Bucket><Prefix>dst/</Prefix><MaxUploads>1</MaxUploads>"
                    f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
                    + (f"<NextKeyMarker>{key}</NextKeyMarker><NextUploadIdMarker>{upload_id}</NextUploadIdMarker>"
                       if truncated else "")
                    + f"<Upload><Key>{key}</Key><UploadId>{upload_id}</UploadId>"
                    "<Initiated>2024-01-01T00:00:00.000Z</Initiated><StorageClass>STANDARD</StorageClass></Upload>"
                    "</ListMultipartUploadsResult>"
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_DELETE(self) -> None:
                fake.requests.append(("DELETE", self.path))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def paged_s3(aws_env: Any) -> Iterator[PagedUploads]:
    fake = PagedUploads()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_abort_incomplete_follows_every_page(paged_s3: PagedUploads) -> None:
    storage = AwsProvider(AwsSettings(region="us-east-1", endpoint_url=paged_s3.endpoint)).storage
    assert storage.abort_incomplete("s3://cb-paged/dst") == 2
    lists = [urllib.parse.parse_qs(urllib.parse.urlsplit(p).query, keep_blank_values=True)
             for m, p in paged_s3.requests if m == "GET"]
    assert [q.get("key-marker") for q in lists] == [None, ["dst/a.bin"]], "the second page asked from the marker"
    assert all(q["prefix"] == ["dst/"] and "uploads" in q for q in lists)
    assert [p for m, p in paged_s3.requests if m == "DELETE"] == [
        "/cb-paged/dst/a.bin?uploadId=up-1",
        "/cb-paged/dst/b.bin?uploadId=up-2",
    ]
