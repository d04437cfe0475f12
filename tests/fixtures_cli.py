"""Helpers for CLI and plugin tests: run the real CLI in a subprocess, install throwaway plugins.

Test plugins are real distributions: a package plus a ``*.dist-info`` directory (``METADATA`` and
``entry_points.txt``) written into a directory that is put on ``PYTHONPATH``, so
``importlib.metadata`` discovers them exactly as it discovers a pip-installed plugin.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

__all__ = ["assert_one_error_line", "job_store_files", "make_plugin", "run_cli"]


def make_plugin(
    root: Path,
    *,
    dist: str,
    entry_name: str,
    modules: dict[str, str],
    entry_target: str | None = None,
    version: str = "1.0.0",
) -> Path:
    """Write modules (``"pkg/plugin.py": source``) and a dist-info for ``dist`` under ``root``.

    The entry point ``entry_name`` (group ``cloudbridge``) points at ``entry_target`` (default:
    the first module, as a dotted name). Returns ``root`` (the directory to put on the path).
    """
    root.mkdir(parents=True, exist_ok=True)
    for relative, source in modules.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        package_dir = path.parent
        while package_dir != root:
            (package_dir / "__init__.py").touch(exist_ok=True)
            package_dir = package_dir.parent
    if entry_target is None:
        first = next(iter(modules))
        entry_target = first.removesuffix(".py").replace("/", ".")
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[cloudbridge]\n{entry_name} = {entry_target}\n", encoding="utf-8")
    return root


def run_cli(
    *args: str,
    paths: Sequence[Path] = (),
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m cloudbridge.cli ARGS`` with ``paths`` prepended to ``PYTHONPATH``."""
    full_env = dict(os.environ)
    full_env.pop("CLOUDBRIDGE_DEBUG", None)
    full_env["NO_COLOR"] = "1"
    full_env["COLUMNS"] = "200"
    if paths:
        full_env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), full_env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "cloudbridge.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        input=input,
    )


def assert_one_error_line(result: subprocess.CompletedProcess[str], *needles: str, code: int = 2) -> str:
    """The run failed with ``code`` and exactly one ``error:`` line on stderr, no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code, f"exit {result.returncode}, stderr:\n{result.stderr}\nstdout:\n{result.stdout}"
    assert len(lines) == 1, f"expected one stderr line, got:\n{result.stderr}"
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def job_store_files(home: Path) -> list[str]:
    """Everything in CLOUDBRIDGE_HOME that a job submission would create (jobs, logs, runs)."""
    found = []
    for path in sorted(home.rglob("*")):
        if path.is_file() and path.name != "config.toml":
            found.append(str(path.relative_to(home)))
    return found
