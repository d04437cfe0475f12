"""``cloudbridge check aws``: what is configured, what is missing, and the command that fixes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloudbridge.errors import CloudbridgeError, NotFound
from cloudbridge.records import CheckReport
from cloudbridge_aws.errors import aws_errors

if TYPE_CHECKING:
    from cloudbridge_aws.provider import AwsProvider

__all__ = ["run_checks"]

ROLE_FIX = (
    "set role_arn in the [aws] table of config.toml (or CLOUDBRIDGE_AWS_ROLE_ARN) to a role SageMaker can "
    "assume; docs/providers/aws.md shows how to create one"
)


def _detail_and_fix(exc: CloudbridgeError, default_fix: str) -> tuple[str, str]:
    """The error as DETAIL without its hint, and the hint as FIX: each said once, not in both columns."""
    text, hint = str(exc), exc.hint
    if hint and text.endswith(f" ({hint})"):
        text = text[: -len(hint) - 3]
    return text, hint or default_fix


def run_checks(provider: AwsProvider) -> CheckReport:
    """Check region, credentials, identity (STS), execution role and default bucket, in that order."""
    report = CheckReport(provider.name)
    session = provider.session
    settings = provider.settings
    try:
        region = session.region
    except CloudbridgeError as exc:
        report.add("region", False, *_detail_and_fix(exc, "set region in the [aws] table of config.toml or AWS_REGION"))
        region = None
    else:
        report.add("region", True, region)

    credentials_ok = False
    try:
        credentials = session.boto_session.get_credentials()
    except CloudbridgeError as exc:
        report.add("credentials", False, *_detail_and_fix(exc, "check `profile` in config.toml or AWS_PROFILE"))
    else:
        if credentials is None:
            report.add(
                "credentials",
                False,
                "no AWS credentials found (env, ~/.aws, SSO or instance role)",
                "run `aws configure` or `aws sso login`, or set AWS_PROFILE",
            )
        else:
            report.add("credentials", True, f"from {getattr(credentials, 'method', 'the default chain')}")
            credentials_ok = True

    if credentials_ok and region:
        try:
            with aws_errors("verify AWS credentials (sts:GetCallerIdentity)"):
                identity = session.client("sts").get_caller_identity()
        except CloudbridgeError as exc:
            report.add("identity", False, *_detail_and_fix(exc, "refresh or replace your credentials"))
        else:
            report.add("identity", True, f"account {identity['Account']} as {identity['Arn']}")

    if settings.role_arn:
        report.add("execution role", True, settings.role_arn)
    else:
        report.add("execution role", False, "no SageMaker execution role (role_arn) is set", ROLE_FIX)

    if not settings.bucket:
        report.add(
            "bucket",
            False,
            "no default bucket is set (code packages, outputs and models go there)",
            "set bucket in the [aws] table of config.toml or CLOUDBRIDGE_AWS_BUCKET; create one with "
            "`aws s3 mb s3://NAME`",
        )
    elif credentials_ok and region:
        try:
            with aws_errors("check the bucket", resource=f"s3://{settings.bucket}", bucket=settings.bucket):
                session.client("s3").head_bucket(Bucket=settings.bucket)
        except NotFound:
            detail = f"bucket s3://{settings.bucket} does not exist"
            report.add("bucket", False, detail, f"aws s3 mb s3://{settings.bucket} --region {region}")
        except CloudbridgeError as exc:
            report.add("bucket", False, *_detail_and_fix(exc, "check the bucket name and your permissions on it"))
        else:
            report.add("bucket", True, f"s3://{settings.bucket}")
    return report
