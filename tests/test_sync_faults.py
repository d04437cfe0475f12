"""Sync through a network that fails ~20% of requests, and SIGKILL-and-resume into S3 (moto)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fault_proxy import FaultProxy
from fixtures_storage import aws_env, moto, s3_bucket  # noqa: F401 - pytest fixtures

from cloudbridge.backends import clear_provider_cache
from cloudbridge.transfers.sync import sync


def _bucket_tree(client, bucket: str, prefix: str) -> dict[str, str]:
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            out[obj["Key"][len(prefix) + 1 :]] = hashlib.sha256(body).hexdigest()
    return out


def _local_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_sync_through_faulty_proxy_is_byte_identical(aws_env, s3_bucket, tmp_path, monkeypatch) -> None:  # noqa: F811
    src = tmp_path / "src"
    for i in range(30):
        (src / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        (src / f"d{i % 3}" / f"f{i:02d}.bin").write_bytes(os.urandom(2000 + i))
    (src / "big.bin").write_bytes(os.urandom(20 * 1024 * 1024))  # multipart through the proxy
    expected = _local_tree(src)
    client = aws_env.client("s3")
    with FaultProxy(aws_env.endpoint, rate=0.2, seed=7) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        monkeypatch.setenv("CLOUDBRIDGE_AWS_MAX_ATTEMPTS", "3")  # let faults reach cloudbridge's own retries too
        clear_provider_cache()
        up = sync(src, f"s3://{s3_bucket}/up", progress=False, workers=8)
        down = sync(f"s3://{s3_bucket}/up", tmp_path / "down", progress=False, workers=8)
        again = sync(src, f"s3://{s3_bucket}/up", progress=False)
    injected = proxy.counts["503"] + proxy.counts["drop_before"] + proxy.counts["drop_after"]
    assert injected >= 10, proxy.counts
    assert up.ok and down.ok, (up.failures, down.failures)
    assert _bucket_tree(client, s3_bucket, "up") == expected
    assert _local_tree(tmp_path / "down") == expected
    assert again.ok and again.copied == []


CHILD = textwrap.dedent(
    """
    import sys, time
    from cloudbridge.transfers.sync import sync

    done = 0

    def slow(event):  # after a third of the objects, tell the test and crawl until killed
        global done
        if event["event"] == "done":
            done += 1
            if done == 30:
                open(sys.argv[3], "w").close()
            time.sleep(0.03 if done < 30 else 0.5)

    sync(sys.argv[1], sys.argv[2], workers=2, progress=slow)
    """
)


def test_sigkill_then_resume_into_s3(aws_env, s3_bucket, tmp_path) -> None:  # noqa: F811
    src = tmp_path / "src"
    src.mkdir()
    n = 90
    for i in range(n):
        (src / f"f{i:03d}.bin").write_bytes(os.urandom(8192))
    (src / "big.bin").write_bytes(os.urandom(18 * 1024 * 1024))
    expected = _local_tree(src)
    client = aws_env.client("s3")
    dst = f"s3://{s3_bucket}/resume"
    marker = tmp_path / "a-third-done"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(src), dst, str(marker)],
        env=dict(os.environ),
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and child.poll() is None and not marker.exists():
        time.sleep(0.05)
    if child.poll() is not None:
        pytest.fail(f"the sync ended (exit {child.returncode}) before it was killed: {child.stderr.read()[-2000:]}")
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    if child.returncode != -signal.SIGKILL:
        pytest.fail("the sync finished before it could be killed")
    visible = _bucket_tree(client, s3_bucket, "resume")
    assert 0 < len(visible) < len(expected)
    for key, digest in visible.items():
        assert expected[key] == digest, f"{key} is visible but incomplete"
    result = sync(src, dst, progress=False)
    assert result.ok
    assert sorted(result.copied) == sorted(set(expected) - set(visible))
    assert _bucket_tree(client, s3_bucket, "resume") == expected
