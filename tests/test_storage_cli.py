"""``cloudbridge storage ls|cp|rm|du|sync`` through the real CLI (subprocess)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from fixtures_cli import assert_one_error_line, run_cli


def _tree(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "b.bin").write_bytes(b"\x00" * 1000)
    (root / "sub" / "c.tmp").write_text("tmp")


def test_sync_json_then_noop_then_delete(tmp_path: Path) -> None:
    _tree(tmp_path / "src")
    first = run_cli("storage", "sync", str(tmp_path / "src"), str(tmp_path / "dst"), "--json", "--exclude", "*.tmp")
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert (data["copied"], data["excluded"], data["bytes_copied"], data["ok"]) == (2, 1, 1005, True)
    assert first.stderr == "", "no progress bar in a pipe"
    again = json.loads(run_cli("storage", "sync", str(tmp_path / "src"), str(tmp_path / "dst"), "--json").stdout)
    assert again["copied"] == 1 and again["unchanged"] == 2  # c.tmp now included
    (tmp_path / "src" / "a.txt").unlink()
    dry = run_cli("storage", "sync", str(tmp_path / "src"), str(tmp_path / "dst"), "--delete", "--dry-run")
    assert "delete  a.txt" in dry.stdout and (tmp_path / "dst" / "a.txt").exists()
    real = run_cli("storage", "sync", str(tmp_path / "src"), str(tmp_path / "dst"), "--delete")
    assert real.returncode == 0 and "deleted 1" in real.stdout
    assert not (tmp_path / "dst" / "a.txt").exists()


def test_ls_du_cp_rm(tmp_path: Path) -> None:
    _tree(tmp_path / "d")
    listing = run_cli("storage", "ls", str(tmp_path / "d"))
    assert listing.returncode == 0
    assert [line.split()[-1] for line in listing.stdout.splitlines()[1:]] == ["a.txt", "sub/"]
    rows = json.loads(run_cli("storage", "ls", "-r", str(tmp_path / "d"), "--json").stdout)
    assert [r["key"] for r in rows] == ["a.txt", "sub/b.bin", "sub/c.tmp"]
    du = json.loads(run_cli("storage", "du", str(tmp_path / "d"), "--json").stdout)
    assert (du["objects"], du["bytes"]) == (3, 1008)
    cp = run_cli("storage", "cp", str(tmp_path / "d" / "a.txt"), str(tmp_path / "out") + "/")
    assert cp.returncode == 0 and (tmp_path / "out" / "a.txt").read_text() == "alpha"
    cpr = run_cli("storage", "cp", "-r", str(tmp_path / "d"), str(tmp_path / "copy"), "--json")
    assert json.loads(cpr.stdout)["copied"] == 3
    rm = run_cli("storage", "rm", "-r", str(tmp_path / "copy"))
    assert rm.returncode == 0 and not (tmp_path / "copy").exists()


def test_bad_input_one_line_exit_2(tmp_path: Path) -> None:
    _tree(tmp_path / "src")
    assert_one_error_line(run_cli("storage", "sync", str(tmp_path / "nope"), str(tmp_path / "x")), "does not exist")
    assert_one_error_line(
        run_cli("storage", "sync", str(tmp_path / "src"), str(tmp_path / "src" / "in")), "inside the source"
    )
    assert_one_error_line(
        run_cli("storage", "sync", str(tmp_path / "src" / "a.txt"), str(tmp_path / "x")), "is a file", "storage cp"
    )
    assert_one_error_line(run_cli("storage", "sync", str(tmp_path / "src"), "zz://b/p"), "zz://")
    assert_one_error_line(run_cli("storage", "cp", str(tmp_path / "src"), str(tmp_path / "x")), "cp -r")
    assert_one_error_line(run_cli("storage", "rm", str(tmp_path / "src" / "missing")), "no such object")
    assert_one_error_line(run_cli("storage", "ls", str(tmp_path / "src") + "/../src/a.txt"), "..")
    assert not (tmp_path / "x").exists()


def test_permanent_failure_exit_1(tmp_path: Path) -> None:
    _tree(tmp_path / "src")
    (tmp_path / "dst" / "a.txt").mkdir(parents=True)
    result = run_cli("storage", "sync", str(tmp_path / "src"), str(tmp_path / "dst"))
    assert result.returncode == 1
    assert "failed to copy a.txt" in result.stderr
    assert (tmp_path / "dst" / "sub" / "b.bin").exists(), "the rest of the transfer completes"


def _run_on_a_terminal(*args: str) -> tuple[str, str, int]:
    """Run the CLI with stderr on a pseudo-terminal (stdout a pipe); return (terminal text, stdout, rc)."""
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "40"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloudbridge.cli", *args], stdout=subprocess.PIPE, stderr=slave, env=env
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    proc.wait(timeout=60)
    raw = b"".join(chunks).decode(errors="replace")
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw), stdout, proc.returncode


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    """On a TTY the rich bar shows files, bytes and bytes/s, in the same binary units as the summary."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):
        (src / f"f{i:02d}.bin").write_bytes(os.urandom(256 * 1024))
    terminal, stdout, rc = _run_on_a_terminal("storage", "sync", str(src), str(tmp_path / "dst"), "--workers", "2")
    assert rc == 0, terminal + stdout
    assert "40/40 files" in terminal, terminal
    assert "10.0/10.0 MiB" in terminal, terminal
    assert re.search(r"\d+(\.\d)? (B|KiB|MiB|GiB)/s", terminal), terminal
    assert not re.search(r"\d (kB|KB|MB|GB)\b", terminal), "no decimal or mislabelled units"
    assert re.match(r"copied 40 object\(s\) \(10\.0 MiB\)", stdout), stdout


def test_sizes_use_binary_units(tmp_path: Path) -> None:
    """``du``, ``ls`` and the sync summary share the bar's binary units (1 KiB = 1024 B)."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "k.bin").write_bytes(b"k" * 1536)
    (tmp_path / "d" / "m.bin").write_bytes(b"m" * (3 * 1024 * 1024))
    du = run_cli("storage", "du", str(tmp_path / "d"))
    assert du.stdout.startswith("2 objects, 3.0 MiB (3147264 bytes)"), du.stdout
    sizes = [line.split()[0:2] for line in run_cli("storage", "ls", str(tmp_path / "d")).stdout.splitlines()[1:]]
    assert sizes == [["1.5", "KiB"], ["3.0", "MiB"]]
    sync = run_cli("storage", "sync", str(tmp_path / "d"), str(tmp_path / "e"))
    assert sync.stdout.startswith("copied 2 object(s) (3.0 MiB)"), sync.stdout
