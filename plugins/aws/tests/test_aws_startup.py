"""Start-up cost of the S3 path: region validation without botocore, one shared botocore loader.

Timings live in ``benchmarks/`` (never asserted here); these tests pin the mechanisms: resolving
settings with a well-known region imports no botocore, a region missing from the static list is
still looked up in botocore's data, and sessions share the parsed service models.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from cloudbridge_aws import settings as settings_module
from cloudbridge_aws.session import AwsSession, shared_loader
from cloudbridge_aws.settings import SAGEMAKER_REGIONS, AwsSettings, known_regions

from cloudbridge.backends import get_provider
from cloudbridge.errors import InvalidSpec


def botocore_sagemaker_regions() -> set[str]:
    """SageMaker regions straight from botocore's bundled endpoint data (no cloudbridge code)."""
    import botocore.session

    session = botocore.session.get_session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("sagemaker", partition_name=partition))
    return regions


def test_static_regions_are_sagemaker_regions() -> None:
    """Every region of the static list is one botocore knows for SageMaker (no typo lets a bad one in)."""
    botocore_regions = botocore_sagemaker_regions()
    assert SAGEMAKER_REGIONS <= botocore_regions, sorted(SAGEMAKER_REGIONS - botocore_regions)
    assert known_regions() == frozenset(botocore_regions)


def test_resolving_settings_imports_no_botocore(tmp_path: Any) -> None:
    """``get_provider('aws')`` (what every ``s3://`` CLI call does first) reads no botocore data."""
    code = (
        "import sys, json\n"
        "from cloudbridge.backends import get_provider\n"
        "p = get_provider('aws', overrides={'region': 'eu-west-1', 'bucket': 'my-bucket'})\n"
        "print(json.dumps([p.settings.region, sorted(m for m in ('boto3', 'botocore') if m in sys.modules)]))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "CLOUDBRIDGE_HOME": str(tmp_path), "AWS_CONFIG_FILE": "/dev/null"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert json.loads(out) == ["eu-west-1", []]


def test_region_off_the_static_list_falls_back_to_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    """A region AWS opened after the list was written is accepted when botocore knows it."""
    monkeypatch.setattr(settings_module, "SAGEMAKER_REGIONS", frozenset({"us-east-1"}))
    assert AwsSettings(region="ap-southeast-2").region == "ap-southeast-2"
    with pytest.raises(InvalidSpec, match=r"overrides.aws.region: 'ap-southeast-22' is not an AWS region where "
                                          r"SageMaker is offered \(did you mean 'ap-southeast-2'\?\)"):
        get_provider("aws", overrides={"region": "ap-southeast-22"})


def test_sessions_share_one_botocore_loader(aws_env: Any) -> None:
    """Every session reads botocore's JSON through one loader: the S3 model is parsed once per process."""
    first = AwsSession(AwsSettings(region="us-east-1", endpoint_url=aws_env.endpoint))
    second = AwsSession(AwsSettings(region="eu-west-1", endpoint_url=aws_env.endpoint))
    first.client("s3"), second.client("s3")
    loader = shared_loader()
    for session in (first, second):
        assert session.boto_session._session.get_component("data_loader") is loader
    paths = loader.search_paths
    assert len(paths) == len(set(paths)), "boto3's data directory is added once, not once per session"
    assert any(path.endswith("boto3/data") for path in paths), "boto3 resources still load"
    # the second client answers for real, from the shared, already parsed model
    second.client("s3").create_bucket(Bucket="cb-shared-loader", CreateBucketConfiguration={
        "LocationConstraint": "eu-west-1"})
    assert "cb-shared-loader" in [b["Name"] for b in first.client("s3").list_buckets()["Buckets"]]
