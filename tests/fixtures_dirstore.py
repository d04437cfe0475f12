"""Make the example provider ``cloudbridge-dirstore`` discoverable by entry point in tests.

``bash scripts/test.sh`` pip-installs ``examples/custom-provider``; when it is not installed (a
developer running one test file), :func:`install_dirstore` writes a real ``dist-info`` with the
same entry point into a temporary directory and puts it, and the package's ``src``, on the path,
exactly as an installation would.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIRSTORE_SRC = ROOT / "examples" / "custom-provider" / "src"
NOTIFY_SRC = ROOT / "examples" / "notify-plugin" / "src"


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def install_example(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, dist: str, src: Path, entry: str, target: str
) -> list[Path]:
    """Make ``dist`` importable and discoverable (in-process and for subprocesses); returns added paths."""
    if _installed(dist):
        return []
    site = tmp_path / f"{dist}-site"
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[cloudbridge]\n{entry} = {target}\n", encoding="utf-8")
    paths = [site, src]
    for path in reversed(paths):
        monkeypatch.syspath_prepend(str(path))
    current = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([*map(str, paths), current]).rstrip(os.pathsep))
    return paths


def install_dirstore(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    """Make ``cloudbridge-dirstore`` (``examples/custom-provider``) available."""
    from cloudbridge.backends import clear_provider_cache
    from cloudbridge.plugins import reset_plugins

    paths = install_example(
        monkeypatch,
        tmp_path,
        dist="cloudbridge-dirstore",
        src=DIRSTORE_SRC,
        entry="dirstore",
        target="cloudbridge_dirstore.plugin",
    )
    reset_plugins()
    clear_provider_cache()
    return paths
