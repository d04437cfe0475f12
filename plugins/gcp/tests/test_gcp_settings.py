"""GcpSettings: where values come from, what is refused, and when anonymous credentials are used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cloudbridge_gcp.session import GcpSession
from cloudbridge_gcp.settings import GcpSettings, is_loopback_http

from cloudbridge.errors import AuthenticationError, InvalidSpec
from cloudbridge.settings import resolve_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "GOOGLE_CLOUD_REGION", "CLOUDSDK_COMPUTE_REGION",
                 "CLOUDBRIDGE_GCP_PROJECT", "CLOUDBRIDGE_GCP_REGION", "STORAGE_EMULATOR_HOST",
                 "CLOUDBRIDGE_GCP_API_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/adc.json")
    return monkeypatch


def test_precedence_google_env_then_config_then_cloudbridge_env_then_overrides(clean_env: pytest.MonkeyPatch,
                                                                              cb_home: Path) -> None:
    clean_env.setenv("GOOGLE_CLOUD_PROJECT", "from-google-env")
    clean_env.setenv("GOOGLE_CLOUD_REGION", "europe-west4")
    assert resolve_settings(GcpSettings, "gcp").project == "from-google-env"
    (cb_home / "config.toml").write_text('[gcp]\nproject = "from-config"\nstaging_bucket = "gs://my-bucket/"\n')
    settings = resolve_settings(GcpSettings, "gcp")
    assert (settings.project, settings.region, settings.staging_bucket) == ("from-config", "europe-west4", "my-bucket")
    clean_env.setenv("CLOUDBRIDGE_GCP_PROJECT", "from-cb-env")
    assert resolve_settings(GcpSettings, "gcp").project == "from-cb-env"
    assert resolve_settings(GcpSettings, "gcp", overrides={"project": "from-job"}).project == "from-job"


@pytest.mark.parametrize(("field", "value", "words"), [
    ("region", "us-centrall1", "did you mean 'us-central1'?"),
    ("project", "My_Project", "is not a Google Cloud project id"),
    ("staging_bucket", "gs://bucket/with/path", "a bucket, not a path"),
    ("service_account", "not-an-email", "service account e-mail"),
    ("api_endpoint", "http://10.1.2.3:8080", "plain http is only allowed for a fake on this machine"),
    ("chunk_size", 1000000, "multiple of 262144"),
])
def test_bad_settings_name_the_field(clean_env: pytest.MonkeyPatch, cb_home: Path, field: str, value: object,
                                     words: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        resolve_settings(GcpSettings, "gcp", overrides={field: value})
    assert f"overrides.gcp.{field}" in str(info.value) and words in str(info.value)


@pytest.mark.parametrize(("url", "local"), [
    ("http://127.0.0.1:8080", True), ("http://localhost:9000", True), ("http://[::1]:80", True),
    ("https://127.0.0.1:8080", False), ("http://10.0.0.5:9000", False), ("us-central1-aiplatform.googleapis.com",
                                                                          False), (None, False),
])
def test_anonymous_only_for_loopback_http(url: str | None, local: bool) -> None:
    assert is_loopback_http(url) is local


def test_real_endpoints_need_adc(clean_env: pytest.MonkeyPatch) -> None:
    """No ADC: a real Vertex endpoint or a non-loopback storage host is AuthenticationError with the command."""
    session = GcpSession(GcpSettings(project="cb-project-1", region="us-central1"))
    with pytest.raises(AuthenticationError, match="gcloud auth application-default login"):
        session.vertex_credentials()
    clean_env.setenv("STORAGE_EMULATOR_HOST", "http://10.0.0.5:9000")
    assert not session.storage_is_local()
    with pytest.raises(AuthenticationError):
        session.storage_client()
    local = GcpSession(GcpSettings(api_endpoint="http://127.0.0.1:1"))
    assert type(local.vertex_credentials()).__name__ == "AnonymousCredentials"
    with pytest.raises(InvalidSpec, match="no GCP project is set"):
        local.project  # noqa: B018


def test_import_cloudbridge_loads_no_google_sdk() -> None:
    # the google-cloud-* "nspkg" .pth files create the empty namespace modules google and google.cloud at
    # interpreter start; anything below them is a real SDK import
    code = ("import sys, cloudbridge, cloudbridge_gcp, cloudbridge_gcp.plugin; from cloudbridge.plugins import "
            "provider_infos; assert 'gcp' in provider_infos(); "
            "bad = [m for m in sys.modules if m.startswith(('google.cloud.', 'google.auth', 'google.api', 'grpc'))]; "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
