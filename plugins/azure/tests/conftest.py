"""Fixtures of the Azure plugin tests: one Azurite per session, a fresh container per test.

The repository's ``tests/conftest.py`` (an isolated ``CLOUDBRIDGE_HOME`` and a fresh plugin manager
per test) does not apply to this directory, so its ``cb_home`` fixture is loaded from that file and
re-used here unchanged. Azurite is installed by ``scripts/ci/azure.sh`` (npm, once); without it the
storage and job tests skip with that command as the reason.
"""

from __future__ import annotations

import importlib.util
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloudbridge.testing.azurite import ACCOUNT, AzuriteServer, azurite_server, find_azurite

_REPO = Path(__file__).resolve().parents[3]
_ROOT_CONFTEST = _REPO / "tests" / "conftest.py"
_spec = importlib.util.spec_from_file_location("_cloudbridge_root_conftest", _ROOT_CONFTEST)
assert _spec and _spec.loader
_root = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_root)
cb_home = _root.cb_home  # autouse: isolated CLOUDBRIDGE_HOME, fresh plugin manager

SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteServer]:
    """Azurite of this test session (installed by scripts/ci/azure.sh when missing)."""
    binary = find_azurite()
    if binary is None:
        subprocess.run(["bash", str(_REPO / "scripts/ci/azure.sh")], check=False, capture_output=True)
        binary = find_azurite()
    if binary is None:
        pytest.skip("Azurite is not installed (needs node and npm): bash scripts/ci/azure.sh")
    with azurite_server(binary) as server:
        yield server


@pytest.fixture
def azure_env(azurite: AzuriteServer, monkeypatch: pytest.MonkeyPatch) -> AzuriteServer:
    """The Azure environment pointing Blob storage at Azurite; no real Azure settings leak in."""
    for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    for name, value in azurite.env().items():
        monkeypatch.setenv(name, value)
    return azurite


@pytest.fixture
def container(azure_env: AzuriteServer) -> str:
    """A fresh container on Azurite; returns its name."""
    name = f"cb-{uuid.uuid4().hex[:12]}"
    azure_env.create_container(name)
    return name


@pytest.fixture
def settings_values(azure_env: AzuriteServer, container: str) -> dict[str, Any]:
    """Settings of a provider whose Blob storage is Azurite (no Azure ML fake)."""
    return {"storage_account": ACCOUNT, "container": container, "blob_endpoint": azure_env.blob_endpoint,
            "retry_total": 1}


@pytest.fixture
def provider(settings_values: dict[str, Any]) -> Any:
    """An :class:`~cloudbridge_azure.provider.AzureProvider` on Azurite."""
    from cloudbridge_azure.provider import AzureProvider
    from cloudbridge_azure.settings import AzureSettings

    return AzureProvider(AzureSettings(**settings_values))


@pytest.fixture(scope="session")
def azureml_fake(azurite: AzuriteServer) -> Iterator[Any]:
    """The Azure ML fake (HTTPS on 127.0.0.1, self-signed) of this session; its storage is Azurite.

    Its cluster ``cpu-cluster`` has at most 3 nodes.
    """
    from cloudbridge.testing.azureml import AzureMLFake

    fake = AzureMLFake(azurite, subscription=SUBSCRIPTION, computes={"cpu-cluster": {"maxNodeCount": 3}},
                       queue_seconds=0.2)
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_env(azureml_fake: Any, azure_env: AzuriteServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The environment of a client of the fake: its CA bundle, no sticky Azure ML cloud left behind."""
    for name, value in azureml_fake.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AZUREML_CURRENT_CLOUD", raising=False)
    azureml_fake.faults.clear()
    return azureml_fake


@pytest.fixture
def fake_settings(fake_env: Any) -> dict[str, Any]:
    """Settings of a provider on the Azure ML fake (cluster ``cpu-cluster``) and Azurite."""
    return {**fake_env.settings(), "compute": "cpu-cluster", "retry_total": 2, "poll_interval": 0.2}


@pytest.fixture
def fake_provider(fake_settings: dict[str, Any]) -> Any:
    """An :class:`~cloudbridge_azure.provider.AzureProvider` on the fake."""
    from cloudbridge_azure.provider import AzureProvider
    from cloudbridge_azure.settings import AzureSettings

    return AzureProvider(AzureSettings(**fake_settings))
