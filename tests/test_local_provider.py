"""The builtin ``local`` provider: registration, settings, capabilities and ``check()``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cloudbridge.errors import InvalidSpec


def test_registered_like_any_plugin() -> None:
    from cloudbridge.plugins import provider_info

    info = provider_info("local")
    assert info.factory == "cloudbridge.backends.local.provider:LocalProvider"
    assert info.settings == "cloudbridge.backends.local.settings:LocalSettings"
    assert info.capabilities == {"storage", "compute", "deploy"} and info.schemes == ("file",)
    assert info.distribution == "cloudbridge-ai"


def test_registration_imports_no_backend_module() -> None:
    code = (
        "import sys; from cloudbridge.plugins import provider_infos; provider_infos(); "
        "print(sorted(m for m in sys.modules if m.startswith('cloudbridge.backends.local.') "
        "and not m.endswith('.plugin')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_settings_from_env_and_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from cloudbridge.backends import clear_provider_cache, get_provider

    monkeypatch.setenv("CLOUDBRIDGE_LOCAL_GPUS", "1, 3")
    monkeypatch.setenv("CLOUDBRIDGE_LOCAL_PRICE_PER_HOUR", "2.5")
    provider = get_provider("local")
    assert provider.settings.gpu_indices == [1, 3] and provider.settings.price_per_hour == 2.5
    clear_provider_cache()
    monkeypatch.setenv("CLOUDBRIDGE_LOCAL_GPUS", "first")
    with pytest.raises(InvalidSpec, match="gpus.*not a list of GPU indices"):
        get_provider("local")
    monkeypatch.delenv("CLOUDBRIDGE_LOCAL_GPUS")
    with pytest.raises(InvalidSpec, match="overrides.local.kill_grace"):
        get_provider("local", overrides={"kill_grace": -1})


def test_capabilities_are_built_lazily() -> None:
    from cloudbridge.backends import get_provider

    provider = get_provider("local")
    assert "cloudbridge.backends.local.compute" in type(provider.compute).__module__
    assert type(provider.storage).__name__ == "LocalStorage"
    assert type(provider.deploy).__name__ == "LocalDeploy"
    assert provider.compute is provider.compute


def test_check_reports_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    from cloudbridge.backends import get_provider

    monkeypatch.setenv("CLOUDBRIDGE_FAKE_GPUS", "2:24")
    report = get_provider("local").check()
    items = {item.name: item for item in report.items}
    assert report.ok, report.to_dict()
    assert items["GPUs"].detail.startswith("2 via fake: 0: FAKE-GPU (24 GiB)")
    assert items["CPUs"].ok and items["memory"].ok
    assert items["home writable"].ok and items["job folder writable"].ok
