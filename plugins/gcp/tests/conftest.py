"""Fixtures of the GCP plugin tests: one gcp-storage-emulator and one Vertex AI fake per session.

The repository's ``tests/conftest.py`` (an isolated ``CLOUDBRIDGE_HOME`` and a fresh plugin manager
per test) does not apply to this directory, so its ``cb_home`` fixture is loaded from that file and
re-used here unchanged.
"""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloudbridge.testing.gcs_emulator import GcsEmulator, gcs_emulator, gcs_emulator_available

_ROOT_CONFTEST = Path(__file__).resolve().parents[3] / "tests" / "conftest.py"
_spec = importlib.util.spec_from_file_location("_cloudbridge_root_conftest", _ROOT_CONFTEST)
assert _spec and _spec.loader
_root = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_root)
cb_home = _root.cb_home  # autouse: isolated CLOUDBRIDGE_HOME, fresh plugin manager

PROJECT = "cb-test-project"
REGION = "us-central1"
_GOOGLE_ENV = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "GOOGLE_CLOUD_REGION", "CLOUDSDK_COMPUTE_REGION",
               "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDBRIDGE_GCP_PROJECT", "CLOUDBRIDGE_GCP_REGION",
               "CLOUDBRIDGE_GCP_STAGING_BUCKET", "CLOUDBRIDGE_GCP_API_ENDPOINT", "STORAGE_EMULATOR_HOST")


@pytest.fixture(scope="session")
def gcs() -> Iterator[GcsEmulator]:
    """The gcp-storage-emulator of this test session (127.0.0.1, free port, in memory)."""
    if not gcs_emulator_available():
        pytest.skip("gcp-storage-emulator is not installed: pip install -e 'plugins/gcp[test]'")
    with gcs_emulator() as server:
        yield server


@pytest.fixture
def gcs_env(gcs: GcsEmulator, monkeypatch: pytest.MonkeyPatch) -> GcsEmulator:
    """``STORAGE_EMULATOR_HOST`` pointing at the emulator; no Google settings leak in from outside."""
    for name in _GOOGLE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.endpoint)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/no-adc-in-tests.json")
    return gcs


@pytest.fixture
def bucket(gcs_env: GcsEmulator) -> str:
    """A fresh bucket on the emulator."""
    name = f"cb-test-{uuid.uuid4().hex[:12]}"
    gcs_env.create_bucket(name)
    return name


@pytest.fixture
def settings_values(gcs_env: GcsEmulator, bucket: str) -> dict[str, Any]:
    """Settings values of a storage-only provider on the emulator."""
    return {"project": PROJECT, "region": REGION, "staging_bucket": bucket, "chunk_size": 256 * 1024}


@pytest.fixture
def provider(settings_values: dict[str, Any]) -> Any:
    """A :class:`~cloudbridge_gcp.provider.GcpProvider` talking to the emulator (and the fake, when set)."""
    from cloudbridge_gcp.provider import GcpProvider
    from cloudbridge_gcp.settings import GcpSettings

    return GcpProvider(GcpSettings(**settings_values))


@pytest.fixture(scope="session")
def vertex(gcs: GcsEmulator) -> Iterator[Any]:
    """The Vertex AI fake of this test session: it runs jobs for real (reads and writes the GCS emulator)."""
    from cloudbridge.testing.vertex_fake import vertex_fake

    with vertex_fake(start_delay=0.1) as fake:
        yield fake


@pytest.fixture
def vertex_values(settings_values: dict[str, Any], vertex: Any) -> dict[str, Any]:
    """Settings values of a provider whose Vertex AI calls go to the fake."""
    vertex.hold = False
    vertex.faults.clear()
    return {**settings_values, "api_endpoint": vertex.endpoint}


@pytest.fixture
def vertex_provider(vertex_values: dict[str, Any]) -> Any:
    """A :class:`~cloudbridge_gcp.provider.GcpProvider` on the GCS emulator and the Vertex AI fake."""
    from cloudbridge_gcp.provider import GcpProvider
    from cloudbridge_gcp.settings import GcpSettings

    provider = GcpProvider(GcpSettings(**vertex_values))
    provider.compute.poll_interval = 0.1
    provider.compute.adapter.poll_interval = 0.1
    return provider
