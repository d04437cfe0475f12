"""Memory stays bounded: syncing a file several times the multipart threshold, local -> S3 and
S3 -> local (moto server), grows the peak RSS of the process running the sync far less than the file.

Each direction runs in a fresh child process: it first syncs a small tree the same way, one file
of it past the multipart threshold (imports, clients and thread pools are not what is measured),
resets its peak RSS, syncs the big file and reports how far the peak (``VmHWM``) rose above the RSS
before. (``getrusage``'s ``ru_maxrss`` cannot be used: Linux carries it over ``exec`` from the
forking parent -- here pytest plus the moto server holding the uploaded object, hundreds of MiB --
which hides the child's own peak.)

The bound is the transfer buffers, not the file: per object in flight (at most ``workers`` of
them), the provider's multipart buffers -- for S3, ``max_concurrency`` part streams and, when
downloading, s3transfer's write queue (<= 100 x 256 KiB). Measured on this 48 MiB file: +7-9 MiB
up, +9-12 MiB down with two malloc arenas; with glibc's default arenas +15 MiB up, +25-35 MiB
down (freed buffers kept per thread), levelling off near +32 / +85 MiB for files of 192-384 MiB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fixtures_storage import aws_env, moto, s3_bucket  # noqa: F401 - pytest fixtures

MiB = 1024 * 1024
BIG = 96 * MiB  # large enough that allocator slack under load stays far below it

CHILD = textwrap.dedent(
    """
    import json, sys
    from cloudbridge.transfers.sync import sync

    def status(field):
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024

    src, dst, warm_src, warm_dst = sys.argv[1:5]
    sync(warm_src, warm_dst, progress=False)
    base = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset the peak RSS (VmHWM) to the current RSS
    result = sync(src, dst, progress=False)
    peak = status("VmHWM")
    print(json.dumps({"base": base, "growth": peak - base, "bytes": result.bytes_copied, "ok": result.ok}))
    """
)


def _measure(src: str, dst: str, warm_src: str, warm_dst: str, **env: str) -> dict:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, src, dst, warm_src, warm_dst],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc peak-RSS reset")
@pytest.mark.timeout(600)
def test_big_file_sync_memory_is_bounded(aws_env, s3_bucket, tmp_path: Path) -> None:  # noqa: F811
    """96 MiB (12 multipart parts) each way: the sync process never holds the file."""
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "big.bin", "wb") as handle:  # written in 1 MiB blocks, never whole in memory
        block = os.urandom(MiB)
        for _ in range(BIG // MiB):
            handle.write(block)
    (tmp_path / "warm").mkdir()
    (tmp_path / "warm" / "w.txt").write_bytes(b"w" * 1024)
    # one file past the multipart threshold too: small objects go through the CRT (no botocore client),
    # and the big one through s3transfer, whose client and imports the warm-up must load first
    (tmp_path / "warm" / "w.bin").write_bytes(os.urandom(9 * MiB))
    bucket = f"s3://{s3_bucket}"
    runs = {
        # glibc as users run it: freed transfer buffers stay in per-thread arenas, so the peak
        # also counts allocator slack -- still well short of the file.
        "default": {},
        # Two malloc arenas: the peak is what the transfer actually holds at once.
        "arenas=2": {"MALLOC_ARENA_MAX": "2"},
    }
    measured = {}
    for name, env in runs.items():
        # a fresh warm-up target per run: a warm-up that copies nothing would load no transfer client
        warm = f"{bucket}/warm-{name}"
        up = _measure(str(src), f"{bucket}/{name}", str(tmp_path / "warm"), warm, **env)
        down = _measure(f"{bucket}/{name}", str(tmp_path / name), warm, str(tmp_path / f"warm-dst-{name}"), **env)
        assert up["ok"] and up["bytes"] == BIG and down["ok"] and down["bytes"] == BIG
        assert (tmp_path / name / "big.bin").stat().st_size == BIG
        measured[name] = {"local->s3": up["growth"], "s3->local": down["growth"]}
    print({name: {k: f"{v / MiB:.1f} MiB" for k, v in m.items()} for name, m in measured.items()})
    for direction, growth in measured["default"].items():
        assert growth < BIG, f"{direction}: peak RSS grew {growth / MiB:.1f} MiB for a {BIG // MiB} MiB file"
    for direction, growth in measured["arenas=2"].items():
        assert growth < BIG // 3, f"{direction}: transfer buffers peaked at {growth / MiB:.1f} MiB"
