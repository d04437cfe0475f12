"""``cloudbridge storage ls|cp|rm|du|sync`` through the real CLI (subprocess)."""

from __future__ import annotations

import json
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
