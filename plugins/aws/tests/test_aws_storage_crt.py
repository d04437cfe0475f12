"""The CRT fast path (``cloudbridge_aws.s3_crt``) keeps the integrity checks of the botocore path.

Each test runs with the CRT on (skipped when ``awscrt`` is not installed) and, where the behaviour
must be the same, with ``CLOUDBRIDGE_AWS_CRT=0`` too.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

from cloudbridge.errors import NotFound, StorageError

needs_crt = pytest.mark.skipif(importlib.util.find_spec("awscrt") is None, reason="awscrt is not installed")
CRT = pytest.param("1", id="crt", marks=needs_crt)
BOTH = [CRT, pytest.param("0", id="botocore")]


def _sent_by_botocore(client: Any) -> list[str]:
    sent: list[str] = []
    client.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.method))
    return sent


@pytest.mark.parametrize("crt", BOTH)
def test_small_upload_is_one_verified_put(provider: Any, bucket: str, tmp_path: Path, monkeypatch, crt: str) -> None:
    monkeypatch.setenv("CLOUDBRIDGE_AWS_CRT", crt)
    sent = _sent_by_botocore(provider.session.client("s3"))
    payload = os.urandom(4096)
    (tmp_path / "a b+c.bin").write_bytes(payload)
    info = provider.storage.upload(tmp_path / "a b+c.bin", f"s3://{bucket}/dir/a b+c.bin")
    assert sent == ([] if crt == "1" else ["PUT"]), "the CRT sends the PUT itself, and nothing else"
    assert info.checksum == hashlib.sha256(payload).hexdigest()
    assert info.etag == hashlib.md5(payload).hexdigest()
    head = provider.session.client("s3").head_object(Bucket=bucket, Key="dir/a b+c.bin", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(payload).digest()).decode()
    back = tmp_path / "back" / "x.bin"
    provider.storage.download(f"s3://{bucket}/dir/a b+c.bin", back)
    assert back.read_bytes() == payload


@needs_crt
def test_crt_upload_corrupted_in_flight_is_removed(provider: Any, bucket: str, tmp_path: Path, monkeypatch) -> None:
    """Bytes changed after their sha256 was computed (moto does not verify it; S3 would refuse them)
    are caught by the reply's MD5 ETag, and the object is deleted."""
    from cloudbridge_aws.s3_crt import CrtS3

    real_put = CrtS3.start_put

    def corrupt(self: Any, bucket: str, key: str, headers: dict, *, body: bytes, done: Any) -> Any:
        return real_put(self, bucket, key, headers, body=b"X" + body[1:], done=done)

    monkeypatch.setattr(CrtS3, "start_put", corrupt)
    (tmp_path / "f.txt").write_bytes(b"hello integrity")
    with pytest.raises(StorageError, match="integrity check failed for s3://.*the object was removed"):
        provider.storage.upload(tmp_path / "f.txt", f"s3://{bucket}/f.txt")
    assert not provider.storage.exists(f"s3://{bucket}/f.txt")


@pytest.mark.parametrize("crt", BOTH)
@pytest.mark.parametrize("size", [4096, 9 * 1024 * 1024])
def test_corrupted_object_is_refused(provider: Any, bucket: str, tmp_path: Path, monkeypatch, crt: str, size: int):
    """Small (one GET) or large (ranged GETs): bytes that no longer match the recorded sha256 leave no file."""
    monkeypatch.setenv("CLOUDBRIDGE_AWS_CRT", crt)
    uri = f"s3://{bucket}/m.bin"
    good = os.urandom(size)
    provider.storage.write_bytes(uri, good)
    bad = bytearray(good)
    bad[-5] ^= 0xFF
    provider.session.client("s3").put_object(
        Bucket=bucket, Key="m.bin", Body=bytes(bad), Metadata={"sha256": hashlib.sha256(good).hexdigest()}
    )
    target = tmp_path / "out" / "m.bin"
    with pytest.raises(StorageError, match="integrity check failed downloading s3://"):
        provider.storage.download(uri, target)
    assert list(target.parent.iterdir()) == [], "no partial or final file is left"


@pytest.mark.parametrize("crt", BOTH)
def test_missing_object_is_not_found(provider: Any, bucket: str, tmp_path: Path, monkeypatch, crt: str) -> None:
    monkeypatch.setenv("CLOUDBRIDGE_AWS_CRT", crt)
    with pytest.raises(NotFound, match="no such object"):
        provider.storage.download(f"s3://{bucket}/nope.bin", tmp_path / "nope.bin")
    with pytest.raises(NotFound, match="does not exist"):
        provider.storage.download(f"s3://{bucket}-missing/nope.bin", tmp_path / "nope.bin")
    assert list(tmp_path.iterdir()) == []


IMPORT_CHECK = """
import sys, threading
import awscrt.http, awscrt.s3  # the CRT path loads these before botocore
from cloudbridge_aws.session import import_botocore

errors = []
started, stop = threading.Event(), threading.Event()

def crt_imports():  # what the async lane does meanwhile, on another thread
    while not stop.is_set():
        started.set()
        try:
            from awscrt.http import HttpRequest  # noqa: F401
        except ImportError as exc:
            errors.append(repr(exc))

thread = threading.Thread(target=crt_imports)
thread.start()
started.wait()
import_botocore()
stop.set()
thread.join()
import botocore.auth, botocore.compat, os
print(botocore.compat.HAS_CRT, "BOTO_DISABLE_CRT" in os.environ, errors[:1])
"""


@needs_crt
def test_botocore_keeps_its_own_signer_while_the_crt_runs_beside_it() -> None:
    """Importing botocore after awscrt: its pure-Python signer (HAS_CRT False), no environment variable
    left behind, and the CRT modules stay importable on other threads throughout (a sync imports
    botocore for a multipart upload while its async lane starts CRT requests)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", IMPORT_CHECK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "[]"]


@needs_crt
def test_a_mixed_tree_syncs_both_ways_in_one_process(aws_env: Any, bucket: str, tmp_path: Path) -> None:
    """Small files (the CRT's async lane) and one file past the multipart threshold (s3transfer, whose
    client is built meanwhile) in one fresh process, up and back down: byte-identical."""
    import subprocess
    import sys

    src = tmp_path / "src"
    for i in range(60):
        (src / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        (src / f"d{i % 3}" / f"f{i}.bin").write_bytes(os.urandom(2048))
    (src / "big.bin").write_bytes(os.urandom(9 * 1024 * 1024))
    back = tmp_path / "back"
    script = (
        "import sys\nfrom cloudbridge.transfers.sync import sync\n"
        "for a, b in ((sys.argv[1], sys.argv[2]), (sys.argv[2], sys.argv[3])):\n"
        "    r = sync(a, b, progress=False)\n"
        "    assert r.ok and len(r.copied) == 61, r.failures[:2]\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(src), f"s3://{bucket}/mixed", str(back)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for path in src.rglob("*.bin"):
        assert (back / path.relative_to(src)).read_bytes() == path.read_bytes()


@needs_crt
def test_crt_multipart_part_corrupted_in_flight_is_refused(
    provider: Any, bucket: str, tmp_path: Path, monkeypatch
) -> None:
    """A multipart upload through the CRT whose part 2 changes after its CRC32 was computed (a flaky
    disk or NIC): the upload is refused and no object is left under the key."""
    from cloudbridge_aws import s3_multipart

    real_read = s3_multipart.FileSlice.readinto

    def flip(self: Any, buffer: Any) -> int:
        n = real_read(self, buffer)
        if self._start > 0 and n:
            buffer[0] ^= 0xFF
        return n

    monkeypatch.setattr(s3_multipart.FileSlice, "readinto", flip)
    (tmp_path / "big.bin").write_bytes(os.urandom(17 * 1024 * 1024))
    with pytest.raises(StorageError):
        provider.storage.upload(tmp_path / "big.bin", f"s3://{bucket}/big.bin")
    assert not provider.storage.exists(f"s3://{bucket}/big.bin")
    client = provider.session.client("s3")
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == [], "the upload was aborted"


@pytest.mark.parametrize("crt", BOTH)
def test_a_foreign_object_is_checked_by_its_md5_etag(provider: Any, bucket: str, tmp_path: Path, monkeypatch, crt: str):
    """An object another tool wrote (no sha256 metadata, no checksum): only its single-part MD5 ETag can
    vouch for it, so that is what the download checks; bytes that no longer match it are refused."""
    from cloudbridge_aws.s3_download import needs_md5

    monkeypatch.setenv("CLOUDBRIDGE_AWS_CRT", crt)
    client = provider.session.client("s3")
    client.put_object(Bucket=bucket, Key="foreign.bin", Body=b"z" * 5000)
    target = tmp_path / "ok" / "foreign.bin"
    provider.storage.download(f"s3://{bucket}/foreign.bin", target)
    assert target.read_bytes() == b"z" * 5000
    head = client.head_object(Bucket=bucket, Key="foreign.bin")
    assert needs_md5(head), "no sha256 nor checksum: the MD5 ETag is the check"
    assert not needs_md5({**head, "Metadata": {"sha256": "0" * 64}}), "a stored sha256 needs no MD5"
    assert not needs_md5({"ETag": '"abc-3"'}), "a multipart ETag is no MD5"

    wrong = hashlib.md5(b"other", usedforsecurity=False).hexdigest()
    from cloudbridge_aws.s3_download import check_digests
    from cloudbridge_aws.storage import Digests

    from cloudbridge.uri import parse_uri

    digests = Digests(md5=True)
    digests.update(b"z" * 5000)
    with pytest.raises(StorageError, match="MD5"):
        check_digests(parse_uri(f"s3://{bucket}/foreign.bin"), digests, {**head, "ETag": f'"{wrong}"'})
