"""Fixtures of the AWS plugin tests: one moto server per session, reset before each test.

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

from cloudbridge.testing.emulators import MotoServer, moto_available, moto_server

_ROOT_CONFTEST = Path(__file__).resolve().parents[3] / "tests" / "conftest.py"
_spec = importlib.util.spec_from_file_location("_cloudbridge_root_conftest", _ROOT_CONFTEST)
assert _spec and _spec.loader
_root = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_root)
cb_home = _root.cb_home  # autouse: isolated CLOUDBRIDGE_HOME, fresh plugin manager

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/cloudbridge-sagemaker"


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    """The moto server of this test session (127.0.0.1, free port)."""
    if not moto_available():
        pytest.skip("moto[server] is not installed: pip install 'moto[server]'")
    with moto_server(REGION) as server:
        yield server


@pytest.fixture
def aws_env(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """A reset moto server, and the AWS environment (fake credentials, endpoint) pointing at it."""
    moto.reset()
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "CLOUDBRIDGE_AWS_REGION", "CLOUDBRIDGE_AWS_BUCKET", "CLOUDBRIDGE_AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    return moto


@pytest.fixture
def bucket(aws_env: MotoServer) -> str:
    """A fresh bucket on the moto server."""
    name = f"cb-test-{uuid.uuid4().hex[:12]}"
    aws_env.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def settings_values(aws_env: MotoServer, bucket: str) -> dict[str, Any]:
    """Settings values of a fully configured provider on the moto server."""
    return {
        "region": REGION,
        "bucket": bucket,
        "role_arn": ROLE,
        "endpoint_url": aws_env.endpoint,
        "max_attempts": 2,
    }


@pytest.fixture
def provider(settings_values: dict[str, Any]) -> Any:
    """An :class:`~cloudbridge_aws.provider.AwsProvider` talking to the moto server."""
    from cloudbridge_aws.provider import AwsProvider
    from cloudbridge_aws.settings import AwsSettings

    return AwsProvider(AwsSettings(**settings_values))
