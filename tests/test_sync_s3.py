"""Sync semantics for every pair involving S3 (moto server): local->s3, s3->local, s3->s3."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fixtures_storage import aws_env, moto, s3_bucket  # noqa: F401 - pytest fixtures

from cloudbridge.errors import NotFound
from cloudbridge.testing.sync import SyncConformance, put_tree, read_tree
from cloudbridge.transfers.sync import sync


def _prefix(bucket: str, name: str) -> str:
    return f"s3://{bucket}/{name}-{uuid.uuid4().hex[:8]}"


class TestSyncLocalToS3(SyncConformance):
    @pytest.fixture
    def src_uri(self, tmp_path: Path) -> str:
        return str(tmp_path / "src")

    @pytest.fixture
    def dst_uri(self, s3_bucket: str) -> str:  # noqa: F811
        return _prefix(s3_bucket, "dst")


class TestSyncS3ToLocal(SyncConformance):
    source_mtime_settable = False

    @pytest.fixture
    def src_uri(self, s3_bucket: str) -> str:  # noqa: F811
        return _prefix(s3_bucket, "src")

    @pytest.fixture
    def dst_uri(self, tmp_path: Path) -> str:
        return str(tmp_path / "dst")


class TestSyncS3ToS3(SyncConformance):
    source_mtime_settable = False

    @pytest.fixture
    def src_uri(self, s3_bucket: str) -> str:  # noqa: F811
        return _prefix(s3_bucket, "src")

    @pytest.fixture
    def dst_uri(self, aws_env, s3_bucket: str) -> str:  # noqa: F811
        other = f"{s3_bucket}-b"
        aws_env.client("s3").create_bucket(Bucket=other)
        return _prefix(other, "dst")


def test_missing_bucket_offers_create_command(aws_env, tmp_path: Path) -> None:  # noqa: F811
    put_tree(str(tmp_path / "src"), {"a": b"1"})
    with pytest.raises(NotFound) as info:
        sync(tmp_path / "src", "s3://no-such-bucket-cb/prefix", progress=False)
    assert "aws s3 mb s3://no-such-bucket-cb" in str(info.value)


def test_missing_bucket_is_one_line_exit_2_from_every_command(aws_env, tmp_path: Path) -> None:  # noqa: F811
    """ls, cp, sync (either side) and rm name the bucket the same way (the conformance suite holds
    every backend to ``BucketNotFound``; this checks what the CLI makes of it)."""
    from fixtures_cli import assert_one_error_line, run_cli

    put_tree(str(tmp_path / "src"), {"a": b"1"})
    gone = "s3://cb-missing-bucket-cli"
    expected = "bucket s3://cb-missing-bucket-cli does not exist"
    for args in (("ls", f"{gone}/p"), ("cp", str(tmp_path / "src" / "a"), f"{gone}/a"), ("rm", f"{gone}/a"),
                 ("sync", str(tmp_path / "src"), f"{gone}/p"), ("sync", f"{gone}/p", str(tmp_path / "dst"))):
        line = assert_one_error_line(run_cli("storage", *args), expected)
        assert "aws s3 mb" in line or args[0] == "sync", line
    assert not (tmp_path / "dst").exists()


def test_unsafe_keys_in_a_bucket_never_escape_local_destination(aws_env, s3_bucket: str, tmp_path: Path) -> None:  # noqa: F811
    client = aws_env.client("s3")
    client.put_object(Bucket=s3_bucket, Key="src/ok.txt", Body=b"ok")
    client.put_object(Bucket=s3_bucket, Key="src/../../escape.txt", Body=b"evil")
    client.put_object(Bucket=s3_bucket, Key="src//abs.txt", Body=b"evil")
    listed = sorted(o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket, Prefix="src/")["Contents"])
    assert "src/../../escape.txt" in listed
    dst = tmp_path / "deep" / "dst"
    result = sync(f"s3://{s3_bucket}/src", dst, progress=False)
    assert result.copied == ["ok.txt"]
    assert sorted(f.error_type for f in result.failures) == ["UnsafeKey", "UnsafeKey"]
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "deep" / "escape.txt").exists()
    assert read_tree(str(dst)) == {"ok.txt": b"ok"}


def test_missing_source_prefix(aws_env, s3_bucket: str, tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(NotFound, match="has no objects"):
        sync(f"s3://{s3_bucket}/nothing", tmp_path / "dst", progress=False)


def test_missing_credentials_clear_and_nothing_uploaded(aws_env, s3_bucket, tmp_path, monkeypatch) -> None:  # noqa: F811
    from cloudbridge.backends import clear_provider_cache
    from cloudbridge.errors import AuthenticationError

    put_tree(str(tmp_path / "src"), {"a": b"1"})
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    clear_provider_cache()
    with pytest.raises(AuthenticationError, match="credentials"):
        sync(tmp_path / "src", f"s3://{s3_bucket}/creds", progress=False)
    assert aws_env.client("s3").list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0


def test_ls_cp_rm_du_on_s3(aws_env, s3_bucket, tmp_path) -> None:  # noqa: F811
    from cloudbridge.errors import UserError
    from cloudbridge.transfers.ops import cp, du, ls, rm

    put_tree(str(tmp_path / "src"), {"a.txt": b"alpha", "sub/b.bin": b"\0" * 100})
    base = f"s3://{s3_bucket}/ops"
    info = cp(tmp_path / "src" / "a.txt", base + "/")
    assert info.uri == f"{base}/a.txt" and info.size == 5
    result = cp(tmp_path / "src", f"{base}/tree", recursive=True, progress=False)
    assert sorted(result.copied) == ["a.txt", "sub/b.bin"]
    assert [i.key for i in ls(base)] == ["a.txt", "tree/"]
    assert [i.key for i in ls(f"{base}/tree", recursive=True)] == ["a.txt", "sub/b.bin"]
    assert [i.key for i in ls(f"{base}/a.txt")] == ["a.txt"]
    assert du(base) == (3, 110)
    back = cp(f"{base}/tree/sub/b.bin", tmp_path / "back" / "b.bin")
    assert back.size == 100 and (tmp_path / "back" / "b.bin").read_bytes() == b"\0" * 100
    with pytest.raises(UserError, match="cp -r"):
        cp(f"{base}/tree", tmp_path / "x")
    with pytest.raises(UserError, match="rm -r"):
        rm(f"{base}/tree")
    assert rm(f"{base}/tree", recursive=True) == 2
    assert [i.key for i in ls(base)] == ["a.txt"]


def test_sync_aborts_orphaned_multipart_uploads(aws_env, s3_bucket, tmp_path) -> None:  # noqa: F811
    """A multipart upload left by a killed sync is invisible to listings but billed: the next sync
    that copies to that prefix aborts it first (when older than the age limit), nothing outside."""
    client = aws_env.client("s3")

    def pending(prefix: str) -> list[str]:
        return [u["Key"] for u in client.list_multipart_uploads(Bucket=s3_bucket, Prefix=prefix).get("Uploads", [])]

    for key in ("dst/big.bin", "dst-sibling/big.bin"):
        upload = client.create_multipart_upload(Bucket=s3_bucket, Key=key)
        client.upload_part(
            Bucket=s3_bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * (5 * 1024 * 1024)
        )
    put_tree(str(tmp_path / "src"), {"a.txt": b"1"})
    dst = f"s3://{s3_bucket}/dst"
    assert sync(tmp_path / "src", dst, dry_run=True, progress=False).aborted_uploads == 0
    assert pending("dst/") == ["dst/big.bin"], "a dry run changes nothing"
    # moto reports every upload as initiated on 2010-11-10: an age limit of ~317 years spares it,
    # the default (1 h) does not -- both sides of the age test, on the real list/abort calls.
    young = sync(tmp_path / "src", dst, abort_incomplete_after=1e10, progress=False)
    assert young.copied == ["a.txt"] and young.aborted_uploads == 0
    assert pending("dst/") == ["dst/big.bin"], "uploads younger than the limit stay"
    assert sync(tmp_path / "src", dst, progress=False).aborted_uploads == 0, "a no-op sync sends no abort"
    put_tree(str(tmp_path / "src"), {"b.txt": b"2"})
    result = sync(tmp_path / "src", dst, progress=False)
    assert result.ok and result.copied == ["b.txt"] and result.aborted_uploads == 1
    assert result.to_dict()["aborted_uploads"] == 1 and "aborted 1 stale upload(s)" in result.summary()
    assert pending("dst/") == []
    assert pending("dst-sibling/") == ["dst-sibling/big.bin"], "never outside the destination prefix"
    # a limit under a minute could match this sync's own uploads: the search runs before any copy
    client.create_multipart_upload(Bucket=s3_bucket, Key="dst/again.bin")
    put_tree(str(tmp_path / "src"), {"c.txt": b"3"})
    short = sync(tmp_path / "src", dst, abort_incomplete_after=0, progress=False)
    assert short.ok and short.copied == ["c.txt"] and short.aborted_uploads == 1
    assert pending("dst/") == []


def test_checksum_sync_reads_the_stored_sha256_instead_of_downloading(s3_bucket: str, tmp_path: Path) -> None:  # noqa: F811
    """``checksum=True`` compares equal-size objects by content: for objects cloudbridge stored, the
    sha256 comes from one HEAD each (its metadata or S3's full-object SHA256), so nothing is downloaded;
    a same-size change is still found."""
    from cloudbridge.transfers.resolve import resolve

    src = tmp_path / "src"
    put_tree(str(src), {"a.bin": b"a" * 3000, "d/b.bin": b"b" * 5000, "c.bin": b"c" * 7000})
    dst = _prefix(s3_bucket, "sums")
    assert sync(src, dst, progress=False).ok
    storage, _ = resolve(dst)
    opened: list[str] = []
    real_open = storage.open_read

    def counting_open(uri):  # type: ignore[no-untyped-def]
        opened.append(str(uri))
        return real_open(uri)

    storage.open_read = counting_open  # type: ignore[method-assign]
    try:
        (src / "d" / "b.bin").write_bytes(b"B" * 5000)  # same size, other bytes
        result = sync(src, dst, checksum=True, progress=False)
        assert result.ok and result.copied == ["d/b.bin"]
        assert sync(src, dst, checksum=True, progress=False).copied == []
    finally:
        del storage.open_read
    assert opened == [], "objects were downloaded to compare checksums"
    assert read_tree(dst) == read_tree(str(src))
