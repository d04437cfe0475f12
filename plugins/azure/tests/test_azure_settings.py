"""AzureSettings: env prefix, validation with the nearest region, loopback detection, registration."""

from __future__ import annotations

import pytest
from cloudbridge_azure.settings import AzureSettings, is_loopback_url

from cloudbridge.errors import InvalidSpec
from cloudbridge.settings import resolve_settings

SUB = "00000000-1111-2222-3333-444444444444"


def test_env_prefix_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDBRIDGE_AZURE_WORKSPACE", "my-ws")
    monkeypatch.setenv("CLOUDBRIDGE_AZURE_COMPUTE", "gpu-cluster")
    settings = AzureSettings(subscription_id=SUB)
    assert settings.workspace == "my-ws" and settings.compute == "gpu-cluster"
    monkeypatch.delenv("CLOUDBRIDGE_AZURE_COMPUTE")
    assert AzureSettings().compute == "serverless"


def test_unknown_region_names_the_nearest() -> None:
    with pytest.raises(ValueError, match="did you mean 'westeurope'"):
        AzureSettings(region="westeruope")
    assert AzureSettings(region="West Europe").region == "westeurope"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("subscription_id", "not-a-guid", "subscription id"),
        ("workspace", "x", "workspace name"),
        ("storage_account", "Has_Upper", "storage account"),
        ("container", "UPPER", "container"),
        ("compute", "bad name!", "compute cluster"),
        ("arm_endpoint", "ftp://x", "http"),
        ("instance_types", {"A100": "p4d.24xlarge"}, "VM size"),
    ],
)
def test_bad_values_refused(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AzureSettings(**{field: value})


def test_resolve_names_the_override_field_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidSpec) as info:
        resolve_settings(AzureSettings, "azure", overrides={"region": "eastuss"}, source="job.yaml")
    text = str(info.value)
    assert "overrides.azure.region" in text and "eastus" in text and "\n" not in text


def test_subscription_from_standard_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUB)
    assert resolve_settings(AzureSettings, "azure").subscription_id == SUB


def test_loopback_detection() -> None:
    assert is_loopback_url("https://127.0.0.1:4443") and is_loopback_url("http://localhost:1/x")
    assert not is_loopback_url("https://management.azure.com") and not is_loopback_url(None)
    assert not is_loopback_url("https://127.0.0.1.evil.example.com")
    assert AzureSettings(arm_endpoint="https://127.0.0.1:9/").uses_fake
    assert not AzureSettings(arm_endpoint="https://management.azure.com").uses_fake


def test_provider_is_registered_without_sdk_import() -> None:
    import subprocess
    import sys

    code = (
        "import sys, cloudbridge\n"
        "from cloudbridge.plugins import provider_info\n"
        "info = provider_info('azure')\n"
        "assert info.schemes == ('az',), info\n"
        "bad = [m for m in sys.modules if m.startswith('azure')]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
