"""Kill a sync with SIGKILL half-way, re-run it: byte-identical, and only the missing files move."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from cloudbridge.transfers.sync import sync

N_FILES = 120
FILE_SIZE = 64 * 1024

# A real sync in a child process. The progress callback sleeps after each finished file so the
# kill reliably lands mid-way; the copies themselves are the real code path.
CHILD = textwrap.dedent(
    """
    import sys, time
    from cloudbridge.transfers.sync import sync

    def slow(event):
        if event["event"] == "done":
            time.sleep(0.02)

    sync(sys.argv[1], sys.argv[2], workers=2, progress=slow)
    print("finished", flush=True)
    """
)


def _digest_tree(root: Path) -> dict[str, str]:
    out = {}
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = Path(directory) / name
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_sigkill_then_resume(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(N_FILES):
        sub = src / f"part{i % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"file{i:03d}.bin").write_bytes(os.urandom(FILE_SIZE))
    (src / "big.bin").write_bytes(os.urandom(12 * 1024 * 1024))
    expected = _digest_tree(src)

    child = subprocess.Popen([sys.executable, "-c", CHILD, str(src), str(dst)], stdout=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = sum(1 for _ in dst.rglob("file*.bin")) if dst.exists() else 0
        if done >= N_FILES // 3:
            break
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, "the sync finished before it could be killed"

    # Nothing partial is visible under a final name: every file present is complete and correct.
    present = _digest_tree(dst)
    visible = {k: v for k, v in present.items() if not os.path.basename(k).startswith(".cb-partial-")}
    assert visible, "the child copied nothing before the kill"
    assert len(visible) < len(expected), "the kill landed after everything was copied"
    for key, digest in visible.items():
        assert expected[key] == digest, f"{key} is visible but not complete"

    result = sync(src, dst, progress=False)
    assert result.ok
    assert sorted(result.copied) == sorted(set(expected) - set(visible)), "only missing files may be copied"
    assert result.unchanged == len(visible)
    assert _digest_tree(dst) == expected, "no temp file may remain after the resumed sync"
