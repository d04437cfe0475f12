"""Sync through a TCP proxy that cuts 10% of requests mid-flight: the CLI still exits 0, byte-identical."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from fixtures_storage import aws_env, moto, s3_bucket  # noqa: F401 - pytest fixtures

from cloudbridge.testing.latency_proxy import LatencyProxy


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _bucket(client, bucket: str, prefix: str) -> dict[str, str]:
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            out[obj["Key"][len(prefix) + 1 :]] = hashlib.sha256(body).hexdigest()
    return out


def test_cli_sync_survives_requests_cut_mid_flight(aws_env, s3_bucket, tmp_path) -> None:  # noqa: F811
    src = tmp_path / "src"
    for i in range(60):
        (src / f"d{i % 4}").mkdir(parents=True, exist_ok=True)
        (src / f"d{i % 4}" / f"f{i:02d}.bin").write_bytes(os.urandom(3000 + i))
    (src / "big.bin").write_bytes(os.urandom(12 * 1024 * 1024))  # multipart parts are cut too
    expected = _tree(src)
    host, port = aws_env.endpoint.split("//", 1)[1].split(":")
    with LatencyProxy(host, int(port), rtt=0.0, cut=0.10, seed=11) as proxy:
        env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url, "CLOUDBRIDGE_AWS_MAX_ATTEMPTS": "3", "NO_COLOR": "1"}
        cli = [sys.executable, "-m", "cloudbridge.cli", "storage", "sync"]
        up = subprocess.run([*cli, str(src), f"s3://{s3_bucket}/cut"], env=env, capture_output=True, text=True)
        down = subprocess.run(
            [*cli, f"s3://{s3_bucket}/cut", str(tmp_path / "down")], env=env, capture_output=True, text=True
        )
    assert proxy.counts["cut"] >= 5, proxy.counts  # the faults really happened
    assert up.returncode == 0, up.stderr[-2000:]
    assert down.returncode == 0, down.stderr[-2000:]
    assert _bucket(aws_env.client("s3"), s3_bucket, "cut") == expected
    assert _tree(tmp_path / "down") == expected
    assert not [p for p in (tmp_path / "down").rglob(".cb-*")], "no partial file is left behind"
