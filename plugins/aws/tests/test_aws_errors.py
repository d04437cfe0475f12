"""Error mapping: AWS failures become one-line cloudbridge errors raised ``from`` the SDK's.

Where moto produces the failure itself, the test drives the real server: missing buckets, IAM
checks (``/moto-api/reset-auth`` turns moto's IAM enforcement on: unknown keys get
``InvalidClientTokenId``, a user without a policy ``AccessDenied``), an HTTP 500, a service-side
``ValidationException``, and no credentials at all. Codes moto never sends (``ExpiredToken``,
``ResourceLimitExceeded``, throttling, ``ModelError``) are given to :func:`translate` as botocore
``ClientError`` objects with AWS's documented error shapes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cloudbridge_aws.errors import translate
from cloudbridge_aws.provider import AwsProvider
from cloudbridge_aws.settings import AwsSettings

from cloudbridge.errors import (
    AuthenticationError,
    BucketNotFound,
    ConflictError,
    InvalidSpec,
    NotFound,
    ProviderError,
    QuotaExceeded,
    TransientError,
    UserError,
)
from cloudbridge.specs import EndpointSpec


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text.strip(), repr(text)
    return text


def test_missing_bucket_names_the_fix(provider: Any) -> None:
    with pytest.raises(BucketNotFound) as info:
        list(provider.storage.list("s3://cb-no-such-bucket/data"))
    assert one_line(info.value) == (
        "bucket s3://cb-no-such-bucket does not exist (create it: aws s3 mb s3://cb-no-such-bucket)"
    )
    cause = info.value.__cause__  # S3's own error, from botocore's client or the CRT path alike
    assert cause is not None and cause.response["Error"]["Code"] == "NoSuchBucket"  # type: ignore[attr-defined]
    with pytest.raises(BucketNotFound, match="bucket s3://cb-no-such-bucket does not exist"):
        provider.storage.stat("s3://cb-no-such-bucket/a.txt")
    with pytest.raises(NotFound, match="no such object: s3://"):
        provider.storage.stat(f"s3://{provider.settings.bucket}/missing.txt")


@pytest.fixture
def iam_enforced(aws_env: Any) -> Iterator[dict[str, str]]:
    """IAM enforcement on the moto server, and the keys of a user that has no policy at all."""
    iam = aws_env.client("iam")
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    previous = aws_env.set_iam_auth(0)
    try:
        yield {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}
    finally:
        aws_env.set_iam_auth(previous)


def test_unknown_keys_and_denied_users(settings_values: dict[str, Any], iam_enforced: dict[str, str]) -> None:
    stranger = AwsProvider(AwsSettings(**settings_values, access_key_id="AKIAUNKNOWN00000000", secret_access_key="x"))
    with pytest.raises(AuthenticationError) as info:
        list(stranger.storage.list(f"s3://{settings_values['bucket']}/"))
    assert "InvalidAccessKeyId" in one_line(info.value) or "InvalidClientTokenId" in str(info.value)
    assert info.value.exit_code == 2 and isinstance(info.value.__cause__, ClientError)

    nobody = AwsProvider(AwsSettings(**settings_values, **iam_enforced))
    with pytest.raises(AuthenticationError) as info:
        nobody.compute.describe("aws-some-job-20250101-000000-abcd")
    message = one_line(info.value)
    assert "AccessDenied" in message and "IAM policy in docs/providers/aws.md" in message
    assert iam_enforced["secret_access_key"] not in message

    report = nobody.check()
    identity = {item.name: item for item in report.items}["identity"]
    assert identity.ok, "sts:GetCallerIdentity needs no permission, as on AWS"


def test_no_credentials(settings_values: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    provider = AwsProvider(AwsSettings(**settings_values))
    with pytest.raises(AuthenticationError) as info:
        provider.storage.stat(f"s3://{settings_values['bucket']}/x")
    assert one_line(info.value).startswith("no AWS credentials found to read object metadata")
    assert "aws configure" in str(info.value)
    report = provider.check()
    items = {item.name: item for item in report.items}
    assert not report.ok and not items["credentials"].ok and "aws configure" in (items["credentials"].fix or "")


def test_server_error_is_transient(provider: Any) -> None:
    """moto answers StopTrainingJob with HTTP 500: retried by botocore, then TransientError."""
    from cloudbridge_aws.errors import aws_errors

    with pytest.raises(TransientError) as info:
        with aws_errors("stop the training job", resource="j"):
            provider.session.client("sagemaker").stop_training_job(TrainingJobName="j")
    assert one_line(info.value).startswith("AWS failed to stop the training job j after retries: 500")
    assert info.value.__cause__ is not None


def test_service_validation_error_is_invalid_spec_and_leaves_nothing(provider: Any, tmp_path: Any) -> None:
    """moto's endpoint configs accept only instance types it knows: a real ValidationException."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    spec = EndpointSpec(name=f"cb-{uuid.uuid4().hex[:8]}", model=str(model), instance_type="ml.g5.xlarge")
    with pytest.raises(InvalidSpec) as info:
        provider.deploy.deploy(spec)
    message = one_line(info.value)
    assert message.startswith("AWS rejected the request to create the endpoint config")
    assert "Value 'ml.g5.xlarge' at 'instanceType' failed to satisfy constraint" in message
    sagemaker = provider.session.client("sagemaker")
    assert sagemaker.list_models()["Models"] == [], "the model created before the failure was deleted"
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert sagemaker.list_endpoints()["Endpoints"] == []


def test_wrong_region_name(aws_env: Any) -> None:
    from cloudbridge.backends import get_provider

    with pytest.raises(InvalidSpec) as info:
        get_provider("aws", overrides={"region": "euwest-1"})
    assert one_line(info.value) == (
        "overrides.aws.region: 'euwest-1' is not an AWS region where SageMaker is offered (did you mean 'eu-west-1'?)"
    )


def test_endpoint_name_taken(provider: Any, tmp_path: Any) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    spec = EndpointSpec(name=f"cb-{uuid.uuid4().hex[:8]}", model=str(model))
    provider.deploy.deploy(spec)
    with pytest.raises(ConflictError) as info:
        provider.deploy.deploy(spec)
    assert one_line(info.value).startswith(f"endpoint {spec.name!r} already exists in us-east-1 (delete it first")


def client_error(code: str, message: str, status: int, op: str = "CreateTrainingJob", **top: Any) -> ClientError:
    response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}, **top}
    return ClientError(response, op)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "message", "status", "expected", "text"),
    [
        (
            "ExpiredToken",
            "The security token included in the request is expired",
            400,
            AuthenticationError,
            "refresh your credentials",
        ),
        (
            "ExpiredTokenException",
            "The security token included in the request is expired",
            400,
            AuthenticationError,
            "aws sso login",
        ),
        (
            "AccessDeniedException",
            "User is not authorized to perform: sagemaker:CreateTrainingJob",
            400,
            AuthenticationError,
            "IAM policy",
        ),
        (
            "ResourceLimitExceeded",
            "The account-level service limit 'ml.p4d.24xlarge for training job usage' is 0 Instances",
            400,
            QuotaExceeded,
            "Service Quotas",
        ),
        ("ThrottlingException", "Rate exceeded", 400, TransientError, "after retries"),
        ("SlowDown", "Please reduce your request rate.", 503, TransientError, "after retries"),
        ("InternalFailure", "", 500, TransientError, "after retries"),
        (
            "ValidationException",
            "1 validation error detected: Value 'ml.x' at 'resourceConfig.instanceType' failed to satisfy constraint",
            400,
            InvalidSpec,
            "resourceConfig.instanceType",
        ),
        ("ValidationException", "Requested resource not found.", 400, NotFound, "not found"),
        (
            "ResourceInUse",
            "Training job names must be unique within an AWS account and region",
            400,
            ConflictError,
            "already exists",
        ),
        ("NoSuchBucket", "The specified bucket does not exist", 404, BucketNotFound, "aws s3 mb s3://cb-b"),
        ("SomethingNew", "a new failure", 400, ProviderError, "SomethingNew: a new failure"),
    ],
)
def test_translate_codes(code: str, message: str, status: int, expected: type, text: str) -> None:
    error = translate(client_error(code, message, status), "create the training job", bucket="cb-b")
    assert type(error) is expected, (type(error), error)
    assert text in one_line(error)


def test_model_error_from_the_container() -> None:
    refused = client_error(
        "ModelError",
        "Received client error (400) from primary",
        424,
        op="InvokeEndpoint",
        OriginalStatusCode=400,
        OriginalMessage='{"error": "inputs must be text"}',
    )
    error = translate(refused, "invoke the endpoint", resource="ep")
    assert isinstance(error, UserError) and "refused the request (HTTP 400)" in one_line(error)
    broken = client_error(
        "ModelError",
        "Received server error (500)",
        424,
        op="InvokeEndpoint",
        OriginalStatusCode=500,
        OriginalMessage="Traceback ...",
    )
    assert isinstance(translate(broken, "invoke the endpoint", resource="ep"), ProviderError)
