"""S3 specifics beyond the conformance suite: multipart, checksums, integrity failures, request counts."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from pathlib import Path
from typing import Any

import pytest

from cloudbridge.errors import StorageError


class Requests:
    """Records (method, operation URL, body size) of every S3 request botocore sends."""

    def __init__(self, client: Any) -> None:
        self.sent: list[tuple[str, str]] = []
        client.meta.events.register("before-send.s3", self)

    def __call__(self, request: Any, **_: Any) -> None:
        self.sent.append((request.method, request.url))


def test_small_object_is_one_put_with_sha256(provider: Any, bucket: str) -> None:
    seen = Requests(provider.session.client("s3"))
    payload = os.urandom(4096)
    info = provider.storage.write_bytes(f"s3://{bucket}/small.bin", payload)
    assert [method for method, _ in seen.sent] == ["PUT"], "verified from the PutObject reply, no extra HEAD"
    assert info.checksum == hashlib.sha256(payload).hexdigest()
    assert info.etag == hashlib.md5(payload).hexdigest()
    head = provider.session.client("s3").head_object(Bucket=bucket, Key="small.bin", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(payload).digest()).decode()
    assert provider.storage.stat(f"s3://{bucket}/small.bin").checksum == info.checksum


def test_multipart_with_full_object_crc32(provider: Any, bucket: str, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    payload = os.urandom(20 * 1024 * 1024 + 7)
    source.write_bytes(payload)
    info = provider.storage.upload(source, f"s3://{bucket}/big.bin")
    assert info.etag and info.etag.endswith("-3"), "three 8 MiB parts"
    assert info.checksum == hashlib.sha256(payload).hexdigest()
    head = provider.session.client("s3").head_object(Bucket=bucket, Key="big.bin", ChecksumMode="ENABLED")
    assert head["ChecksumType"] == "FULL_OBJECT"
    assert head["ChecksumCRC32"] == base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()
    target = tmp_path / "back.bin"
    provider.storage.download(f"s3://{bucket}/big.bin", target)
    assert target.read_bytes() == payload


def test_corrupted_object_fails_download(provider: Any, bucket: str, tmp_path: Path) -> None:
    """An object whose bytes no longer match its recorded sha256 is refused, and no file appears."""
    uri = f"s3://{bucket}/model.bin"
    good = os.urandom(9 * 1024 * 1024)
    provider.storage.write_bytes(uri, good)
    recorded = provider.storage.stat(uri).checksum
    bad = bytearray(good)
    bad[123] ^= 0xFF
    # Another writer replaces the bytes but keeps the old sha256 metadata (a silent corruption).
    provider.session.client("s3").put_object(
        Bucket=bucket, Key="model.bin", Body=bytes(bad), Metadata={"sha256": recorded}
    )
    target = tmp_path / "out" / "model.bin"
    with pytest.raises(StorageError, match="integrity check failed downloading s3://.*sha256 differs"):
        provider.storage.download(uri, target)
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_corruption_in_flight_is_detected_and_removed(provider: Any, bucket: str) -> None:
    """Bytes changed after the SDK computed its checksum (moto does not verify checksums) are caught
    by comparing the stored object's MD5 ETag with ours; the bad object is deleted."""
    client = provider.session.client("s3")

    def corrupt(request: Any, **_: Any) -> None:
        body = request.body.read() if hasattr(request.body, "read") else request.body
        request.body = b"X" + body[1:]

    client.meta.events.register("before-send.s3.PutObject", corrupt)
    try:
        with pytest.raises(StorageError, match="integrity check failed for s3://.*the object was removed"):
            provider.storage.write_bytes(f"s3://{bucket}/flaky.txt", b"hello integrity")
    finally:
        client.meta.events.unregister("before-send.s3.PutObject", corrupt)
    assert not provider.storage.exists(f"s3://{bucket}/flaky.txt")


def test_bucket_root_listing(provider: Any, bucket: str) -> None:
    provider.storage.write_bytes(f"s3://{bucket}/top.txt", b"1")
    provider.storage.write_bytes(f"s3://{bucket}/dir/inner.txt", b"22")
    assert [i.key for i in provider.storage.list(f"s3://{bucket}", recursive=False)] == ["dir/", "top.txt"]
    assert [(i.key, i.size) for i in provider.storage.list(f"s3://{bucket}")] == [("dir/inner.txt", 2), ("top.txt", 1)]
