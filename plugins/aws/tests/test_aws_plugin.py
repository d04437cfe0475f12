"""Registration, settings resolution and ``check()`` of the ``aws`` provider."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest
from cloudbridge_aws.provider import AwsProvider
from cloudbridge_aws.settings import AwsSettings

from cloudbridge.backends import clear_provider_cache, get_provider
from cloudbridge.errors import InvalidSpec
from cloudbridge.plugins import plugin_statuses, provider_for_scheme, provider_info
from cloudbridge.settings import config_path


def test_registered_through_the_entry_point() -> None:
    info = provider_info("aws")
    assert info.distribution == "cloudbridge-aws"
    assert info.capabilities == {"storage", "compute", "deploy"}
    assert info.schemes == ("s3",) and info.install_hint == "pip install cloudbridge-aws"
    assert provider_for_scheme("s3").name == "aws"
    assert any(s.name == "aws" and s.ok for s in plugin_statuses())


def test_registration_imports_no_sdk() -> None:
    code = (
        "import sys, json\n"
        "from cloudbridge.plugins import provider_infos, plugin_statuses\n"
        "provider_infos(); plugin_statuses()\n"
        "print(json.dumps(sorted(m for m in ('boto3', 'botocore', 'moto', 'cloudbridge_aws.provider') "
        "if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_settings_precedence(aws_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS env < config.toml profile < CLOUDBRIDGE_AWS_* < the job's overrides.aws."""
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    assert get_provider("aws").settings.region == "us-west-2"
    config_path().write_text('[aws]\nregion = "eu-west-1"\nbucket = "from-config"\n', encoding="utf-8")
    clear_provider_cache()
    settings = get_provider("aws").settings
    assert (settings.region, settings.bucket) == ("eu-west-1", "from-config")
    monkeypatch.setenv("CLOUDBRIDGE_AWS_REGION", "eu-central-1")
    clear_provider_cache()
    settings = get_provider("aws", overrides={"bucket": "from-job"}).settings
    assert (settings.region, settings.bucket) == ("eu-central-1", "from-job")
    assert settings.endpoint_url == aws_env.endpoint, "AWS_ENDPOINT_URL is honoured"


def test_profiles_and_bad_settings(aws_env: Any) -> None:
    config_path().write_text(
        '[profiles.prod.aws]\nregion = "us-east-2"\nrole_arn = "arn:aws:iam::123456789012:role/prod"\n',
        encoding="utf-8",
    )
    assert get_provider("aws", profile="prod").settings.role_arn == "arn:aws:iam::123456789012:role/prod"
    with pytest.raises(InvalidSpec, match=r"overrides.aws.role_arn: 'admin' is not an IAM role ARN"):
        get_provider("aws", overrides={"role_arn": "admin"})
    with pytest.raises(InvalidSpec, match=r"overrides.aws.bucket_name: unknown setting \(known: .*bucket"):
        get_provider("aws", overrides={"bucket_name": "x"})


def test_secrets_never_print() -> None:
    settings = AwsSettings(region="us-east-1", access_key_id="AKIAEXAMPLE", secret_access_key="s3cr3t-value")
    for text in (repr(settings), str(settings), repr(AwsProvider(settings)), settings.model_dump_json()):
        assert "s3cr3t-value" not in text


def test_check_names_what_is_missing(aws_env: Any) -> None:
    provider = AwsProvider(AwsSettings(region="us-east-1", endpoint_url=aws_env.endpoint))
    report = provider.check()
    items = {item.name: item for item in report.items}
    assert not report.ok
    assert items["region"].ok and items["credentials"].ok and items["identity"].ok
    assert "123456789012" in items["identity"].detail
    assert not items["execution role"].ok and "role_arn" in (items["execution role"].fix or "")
    assert not items["bucket"].ok and "aws s3 mb" in (items["bucket"].fix or "")

    missing = AwsProvider(
        AwsSettings(
            region="us-east-1",
            endpoint_url=aws_env.endpoint,
            bucket="cb-not-there",
            role_arn="arn:aws:iam::123456789012:role/x",
        )
    )
    bucket = {item.name: item for item in missing.check().items}["bucket"]
    assert not bucket.ok and bucket.fix == "aws s3 mb s3://cb-not-there --region us-east-1"


def test_check_all_good(provider: Any) -> None:
    report = provider.check()
    assert report.ok, report.to_dict()
    assert [item.name for item in report.items] == ["region", "credentials", "identity", "execution role", "bucket"]


def test_no_region_anywhere(aws_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    provider = get_provider("aws")
    report = provider.check()
    region = {item.name: item for item in report.items}["region"]
    assert not region.ok and "AWS_REGION" in (region.fix or "")
    with pytest.raises(InvalidSpec, match="settings.aws.region: no AWS region is set"):
        provider.storage.stat("s3://bucket-x/key")


def table_rows(stdout: str) -> dict[str, tuple[str, str]]:
    """``check``'s table as {check: (status, detail and fix)}."""
    rows = {}
    for line in stdout.splitlines()[1:]:
        match = re.match(r"^aws\s+(region|credentials|identity|execution role|bucket)\s+(ok|failed)\s+(.*)$", line)
        assert match, line
        rows[match.group(1)] = (match.group(2), match.group(3).rstrip())
    return rows


def test_cli_check_aws(aws_env: Any, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cloudbridge check aws`` as a user runs it: nothing configured -> exit 1, each failed check named
    once with its fix (a fix never repeated in DETAIL); everything configured -> exit 0."""
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    cli = [sys.executable, "-m", "cloudbridge.cli", "check", "aws"]
    failed = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1, failed.stderr
    assert failed.stderr.strip() == "error: 3 check(s) failed: aws: region; aws: execution role; aws: bucket"
    rows = table_rows(failed.stdout)
    assert list(rows) == ["region", "credentials", "execution role", "bucket"]
    fixes = {
        "region": "set region in the [aws] table of config.toml, CLOUDBRIDGE_AWS_REGION or AWS_REGION",
        "execution role": "set role_arn in the [aws] table of config.toml (or CLOUDBRIDGE_AWS_ROLE_ARN)",
        "bucket": "set bucket in the [aws] table of config.toml or CLOUDBRIDGE_AWS_BUCKET",
    }
    for name, fix in fixes.items():
        assert rows[name][0] == "failed" and rows[name][1].count(fix) == 1, rows[name]
        assert failed.stdout.count(fix) == 1, f"{name}: the fix is printed once, not in DETAIL too"
    assert rows["region"][1].startswith("settings.aws.region: no AWS region is set  ")
    assert rows["credentials"] == ("ok", "from env")

    as_json = subprocess.run([*cli, "--json"], capture_output=True, text=True, timeout=120)
    items = {i["name"]: i for i in json.loads(as_json.stdout)[0]["items"]}
    assert [n for n, i in items.items() if not i["ok"]] == ["region", "execution role", "bucket"]
    assert all(i["fix"] not in i["detail"] for i in items.values() if not i["ok"])

    config_path().write_text(
        f'[aws]\nregion = "us-east-1"\nbucket = "{bucket}"\n'
        'role_arn = "arn:aws:iam::123456789012:role/cloudbridge-sagemaker"\n',
        encoding="utf-8",
    )
    passed = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    rows = table_rows(passed.stdout)
    assert list(rows) == ["region", "credentials", "identity", "execution role", "bucket"]
    assert {status for status, _ in rows.values()} == {"ok"} and passed.stderr == ""
    assert rows["identity"][1].startswith("account 123456789012 as arn:aws:")
