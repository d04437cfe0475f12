"""The async lane with the real S3 plugin, awscrt and moto.

* an unsafe key (``../x``) in a bucket listing is that object's failure, the lane copies the rest;
* 300 small files up and back down go through ``S3Storage.start_upload``/``start_download`` and
  come back byte-identical.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from fixtures_lane import FAST, _partials, _tree, _write_tree
from fixtures_storage import aws_env, moto, s3_bucket  # noqa: F401 - pytest fixtures

from cloudbridge.interfaces import as_uri
from cloudbridge.transfers.sync import DEFAULT_WORKERS, sync


# ---- 5. unsafe keys (S3 through moto, the CRT lane) ---------------------------------------------
def _count_calls(storage: Any, *names: str) -> dict[str, Any]:
    """Wrap bound methods on this instance, calling the originals: the first argument of every call
    by method name, and under ``"peak"`` the most ``start_*`` requests started and not yet done."""
    calls: dict[str, Any] = {name: [] for name in names}
    calls["peak"] = 0
    active = 0
    lock = threading.Lock()
    for name in names:
        original = getattr(storage, name)

        def wrapper(*args: Any, _original: Any = original, _method: str = name) -> Any:
            nonlocal active
            if _method.startswith("start_"):
                first, target, done = args

                def ended(finish: Any) -> None:
                    nonlocal active
                    with lock:
                        active -= 1
                    done(finish)

                args = (first, target, ended)
                with lock:
                    active += 1
                    calls["peak"] = max(calls["peak"], active)
            with lock:
                calls[_method].append(args[0])
            handle = _original(*args)
            if handle is None and _method.startswith("start_"):
                with lock:
                    active -= 1
            return handle

        setattr(storage, name, wrapper)
    return calls


def _s3_storage(uri: str) -> Any:
    from cloudbridge.transfers import storage_for
    from cloudbridge.transfers.resolve import resolve

    storage = storage_for(uri)
    assert resolve(uri)[0] is storage, "sync() will use this very instance"
    assert hasattr(storage, "start_download") and storage.crt(as_uri(uri).bucket) is not None, "awscrt in use"
    return storage


def test_unsafe_keys_in_a_listing_are_refused_while_the_lane_copies_the_rest(aws_env, s3_bucket, tmp_path) -> None:  # noqa: F811
    client = aws_env.client("s3")
    good = {f"k{i:02d}.txt": os.urandom(100 + i) for i in range(12)}
    for key, body in good.items():
        client.put_object(Bucket=s3_bucket, Key=f"src/{key}", Body=body)
    client.put_object(Bucket=s3_bucket, Key="src/../x", Body=b"evil")
    client.put_object(Bucket=s3_bucket, Key="src//abs.txt", Body=b"evil")
    storage = _s3_storage(f"s3://{s3_bucket}/src")
    calls = _count_calls(storage, "start_download", "download")
    dst = tmp_path / "deep" / "dst"
    result = sync(f"s3://{s3_bucket}/src", dst, progress=False, retry=FAST)
    assert result.copied == sorted(good)
    assert sorted((f.key, f.error_type) for f in result.failures) == [("../x", "UnsafeKey"), ("/abs.txt", "UnsafeKey")]
    assert sorted(info.key for info in calls["start_download"]) == sorted(good), "the lane copied the safe keys"
    assert calls["download"] == []
    assert _tree(dst) == good
    assert not (tmp_path / "deep" / "x").exists() and not (tmp_path / "x").exists()
    assert _partials(tmp_path) == []


# ---- 6. the real thing: 300 small files through the CRT ------------------------------------------
def test_300_small_files_up_and_down_through_the_crt_lane(aws_env, s3_bucket, tmp_path) -> None:  # noqa: F811
    n = 300
    files = _write_tree(tmp_path / "src", n, mtimes=False)
    uri = f"s3://{s3_bucket}/rt"
    storage = _s3_storage(uri)
    calls = _count_calls(storage, "start_upload", "start_download", "upload", "download")
    up = sync(tmp_path / "src", uri, progress=False, retry=FAST)
    assert up.ok, up.failures[:3]
    assert up.copied == sorted(files) and up.bytes_copied == sum(map(len, files.values()))
    assert len(calls["start_upload"]) == n and calls["upload"] == []
    assert calls["peak"] > DEFAULT_WORKERS, "more PUTs in flight at once than the thread pool has threads"
    calls["peak"] = 0
    down = sync(uri, tmp_path / "down", progress=False, retry=FAST)
    assert down.ok, down.failures[:3]
    assert down.copied == sorted(files)
    assert len(calls["start_download"]) == n and calls["download"] == []
    assert calls["peak"] > DEFAULT_WORKERS, "more GETs in flight at once than the thread pool has threads"
    assert _tree(tmp_path / "down") == files
    assert _partials(tmp_path / "down") == []
    listed = {o["Key"][len("rt/") :]: o for o in _client_list(aws_env.client("s3"), s3_bucket, "rt/")}
    assert sorted(listed) == sorted(files)
    for key, obj in listed.items():
        assert (tmp_path / "down" / key).stat().st_mtime == obj["LastModified"].timestamp(), key
    again = sync(tmp_path / "src", uri, progress=False)
    assert again.copied == [] and len(calls["start_upload"]) == n, "a no-op sync starts no request"


def _client_list(client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    return [
        obj
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
    ]
