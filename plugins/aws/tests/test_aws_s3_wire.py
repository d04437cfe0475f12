"""Reading the S3 endpoint and static keys without botocore (``cloudbridge_aws.s3_wire``).

The oracle for the endpoint is botocore itself: for the plain cases, its S3 client (built offline,
no request sent) must report the endpoint we computed; for every case where botocore could answer
otherwise (FIPS, dual-stack, ``AWS_ENDPOINT_URL_S3``, an endpoint line in the AWS config file, ISO
partitions), we must say ``None`` and leave the answer to botocore.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cloudbridge_aws.s3_wire import endpoint_without_botocore, static_credentials
from cloudbridge_aws.settings import AwsSettings

ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    return config


def _botocore_endpoint(region: str) -> str:
    import botocore.session

    session = botocore.session.Session()
    client = session.create_client("s3", region_name=region, aws_access_key_id="k", aws_secret_access_key="s")
    return client.meta.endpoint_url


@pytest.mark.parametrize("region", ["us-west-2", "eu-central-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1"])
def test_the_regional_endpoint_is_botocores(region: str) -> None:
    assert endpoint_without_botocore(AwsSettings(region=region)) == _botocore_endpoint(region)


def test_an_explicit_endpoint_wins() -> None:
    settings = AwsSettings(region="us-east-1", endpoint_url="http://127.0.0.1:9000")
    assert endpoint_without_botocore(settings) == "http://127.0.0.1:9000"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AWS_ENDPOINT_URL_S3", "http://s3.local:9000"),
        ("AWS_USE_FIPS_ENDPOINT", "true"),
        ("AWS_USE_DUALSTACK_ENDPOINT", "1"),
    ],
)
def test_what_botocore_might_answer_otherwise_is_left_to_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    assert endpoint_without_botocore(AwsSettings(region="us-west-2")) is None


@pytest.mark.parametrize(
    "line", ["endpoint_url = http://x:1", "s3 =\n  addressing_style = path", "use_fips_endpoint = true"]
)
def test_an_endpoint_setting_in_the_config_file_is_left_to_botocore(clean_env: Path, line: str) -> None:
    clean_env.write_text(f"[default]\nregion = us-west-2\n{line}\n")
    assert endpoint_without_botocore(AwsSettings(region="us-west-2")) is None


@pytest.mark.parametrize("region", [None, "us-iso-east-1", "eu-isoe-west-1", "not a region"])
def test_no_region_or_an_unusual_partition_is_left_to_botocore(region: str | None) -> None:
    assert endpoint_without_botocore(AwsSettings.model_construct(region=region, endpoint_url=None)) is None


def test_explicit_keys_come_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    settings = AwsSettings(access_key_id="k1", secret_access_key="s1", session_token="t1")
    assert static_credentials(settings) == ("k1", "s1", "t1")


def test_environment_keys_when_no_profile_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-token")
    assert static_credentials(AwsSettings()) == ("env-key", "env-secret", "env-token")
    # botocore's own chain agrees: the environment provider answers first
    import botocore.session

    frozen = botocore.session.Session().get_credentials().get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == ("env-key", "env-secret", "env-token")


def test_a_named_profile_or_no_keys_is_left_to_botocores_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    assert static_credentials(AwsSettings()) is None
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    assert static_credentials(AwsSettings(profile="work")) is None  # a named profile skips the environment
