"""Bounded int options (``--workers``) take the pydantic-free converter inside their bounds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from cloudbridge.cli.main import main
sys.argv = ["cloudbridge", "storage", "sync", "--dry-run", "--workers", sys.argv[1], sys.argv[2], sys.argv[3]]
try:
    main()
finally:
    print("adapters imported:", "typer._adapters" in sys.modules, file=sys.stderr)
"""


def _sync(tmp_path: Path, workers: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "a.txt").write_text("a")
    args = [sys.executable, "-c", SCRIPT, workers, str(tmp_path / "src"), str(tmp_path / "dst")]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_bounded_int_in_bounds_skips_pydantic(tmp_path: Path) -> None:
    done = _sync(tmp_path, "5")
    assert done.returncode == 0, done.stderr
    assert "adapters imported: False" in done.stderr


def test_bounded_int_out_of_bounds_gets_typers_message(tmp_path: Path) -> None:
    done = _sync(tmp_path, "-1")
    assert done.returncode == 2
    assert "invalid value for '--workers'" in done.stderr and "greater than or equal to 0" in done.stderr
