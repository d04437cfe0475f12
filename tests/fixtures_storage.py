"""Fixtures for the storage/sync tests that need S3: one moto server per session (127.0.0.1)."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator

import pytest

from cloudbridge.testing.emulators import MotoServer, moto_available, moto_server

__all__ = ["aws_env", "moto", "s3_bucket"]


def _aws_plugin_installed() -> bool:
    return importlib.util.find_spec("cloudbridge_aws") is not None


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    """The session's moto server."""
    if not moto_available():
        pytest.skip("moto[server] is not installed")
    if not _aws_plugin_installed():
        pytest.skip("the cloudbridge-aws plugin is not installed (pip install -e plugins/aws)")
    with moto_server() as server:
        yield server


@pytest.fixture
def aws_env(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """AWS environment variables (fake credentials, endpoint) pointing at the moto server."""
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "CLOUDBRIDGE_AWS_BUCKET", "CLOUDBRIDGE_AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    return moto


@pytest.fixture
def s3_bucket(aws_env: MotoServer) -> str:
    """A fresh, empty bucket."""
    name = f"cb-sync-{uuid.uuid4().hex[:12]}"
    aws_env.client("s3").create_bucket(Bucket=name)
    return name
