"""Shared fixtures: every test gets its own CLOUDBRIDGE_HOME and a fresh plugin manager."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def cb_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An isolated CLOUDBRIDGE_HOME (SQLite store, config, logs) for each test."""
    home = tmp_path_factory.mktemp("cbhome")
    monkeypatch.setenv("CLOUDBRIDGE_HOME", str(home))
    monkeypatch.delenv("CLOUDBRIDGE_PROFILE", raising=False)
    monkeypatch.delenv("CLOUDBRIDGE_PLUGINS", raising=False)
    monkeypatch.delenv("CLOUDBRIDGE_DISABLE_PLUGINS", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    from cloudbridge.backends import clear_provider_cache
    from cloudbridge.plugins import reset_plugins

    reset_plugins()
    clear_provider_cache()
    yield home
    reset_plugins()
    clear_provider_cache()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gpu`` tests without an NVIDIA GPU and ``cloud`` tests without opt-in, saying why."""
    import shutil

    has_gpu = shutil.which("nvidia-smi") is not None
    cloud = os.environ.get("CLOUDBRIDGE_CLOUD_TESTS") == "1"
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason="no NVIDIA GPU on this machine (nvidia-smi not found)"))
        if "cloud" in item.keywords and not cloud:
            item.add_marker(pytest.mark.skip(reason="real-cloud test; set CLOUDBRIDGE_CLOUD_TESTS=1 to run"))
