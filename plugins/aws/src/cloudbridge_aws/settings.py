"""``AwsSettings``: everything the AWS provider needs, validated by pydantic.

Resolution (lowest precedence first, see :func:`cloudbridge.settings.resolve_settings`): the
standard AWS environment (``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_PROFILE``,
``AWS_ENDPOINT_URL``, through this plugin's ``cloudbridge_resolve_settings`` hook) < the ``[aws]``
table of the ``config.toml`` profile < ``CLOUDBRIDGE_AWS_*`` variables < a job's ``overrides.aws``.
Credentials come from boto3's own chain (env, ``~/.aws``, SSO, instance roles) unless the
secret fields are set; those are :class:`~pydantic.SecretStr` and never print.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from cloudbridge.settings import ProviderSettings

__all__ = ["INSTANCE_TYPE_RE", "SAGEMAKER_REGIONS", "AwsSettings", "is_known_region", "known_regions"]

_ROLE_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
#: A SageMaker instance type (``ml.FAMILY.SIZE``), for settings and specs alike.
INSTANCE_TYPE_RE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9-]+$")

#: Regions where SageMaker is offered (botocore's endpoint data, checked by the tests). Most
#: regions are validated against this set alone: loading botocore's ``endpoints.json`` costs about
#: 0.1 s, which every CLI call that touches ``s3://`` used to pay. A region missing here (one that AWS
#: opened after this list was written) is looked up in botocore's data, so it is still accepted.
SAGEMAKER_REGIONS = frozenset(
    {
        "af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
        "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
        "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ca-central-1", "ca-west-1", "cn-north-1",
        "cn-northwest-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2",
        "eu-west-1", "eu-west-2", "eu-west-3", "il-central-1", "me-central-1", "me-south-1", "mx-central-1",
        "sa-east-1", "us-east-1", "us-east-2", "us-gov-east-1", "us-gov-west-1", "us-west-1", "us-west-2",
    }
)


@lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """Every region where SageMaker is offered: :data:`SAGEMAKER_REGIONS` plus botocore's endpoint data.

    Reads botocore's bundled data (offline, no call) through the shared loader of
    :mod:`cloudbridge_aws.session`; only needed for a region that is not in the static list.
    """
    import botocore.session

    from cloudbridge_aws.session import shared_loader

    session = botocore.session.Session()
    session.register_component("data_loader", shared_loader())
    regions: set[str] = set(SAGEMAKER_REGIONS)
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("sagemaker", partition_name=partition))
    return frozenset(regions)


def is_known_region(region: str) -> bool:
    """True when SageMaker is offered in ``region`` (botocore's data is read only off the static list)."""
    return region in SAGEMAKER_REGIONS or region in known_regions()


class AwsSettings(ProviderSettings):
    """Settings of the ``aws`` provider (env prefix ``CLOUDBRIDGE_AWS_``)."""

    model_config = SettingsConfigDict(env_prefix="CLOUDBRIDGE_AWS_", extra="forbid", env_ignore_empty=True)

    region: str | None = Field(None, description="AWS region, e.g. 'eu-west-1'.")
    profile: str | None = Field(None, description="Named profile of ~/.aws/config to take credentials from.")
    role_arn: str | None = Field(None, description="SageMaker execution role ARN (jobs and endpoints run as it).")
    bucket: str | None = Field(None, description="Default S3 bucket for code packages, outputs and models.")
    prefix: str = Field("cloudbridge", description="Key prefix inside the default bucket.")
    endpoint_url: str | None = Field(None, description="Send every call here (moto, LocalStack).")
    access_key_id: SecretStr | None = Field(None, description="Explicit access key (default: boto3's chain).")
    secret_access_key: SecretStr | None = Field(None, description="Explicit secret key.")
    session_token: SecretStr | None = Field(None, description="Explicit session token.")
    instance_types: dict[str, str] = Field(
        default_factory=dict,
        description="Accelerator name (or 'cpu') -> SageMaker instance type, overriding the built-in choice.",
    )
    training_image: str | None = Field(None, description="Training image URI (default: the PyTorch DLC).")
    serving_image: str | None = Field(
        None, description="Serving image URI (default: <account>.dkr.ecr.<region>.amazonaws.com/cloudbridge-serve)."
    )
    volume_size_gb: int = Field(50, ge=1, le=16384, description="EBS volume per training instance.")
    subnets: list[str] = Field(default_factory=list, description="VPC subnets for jobs and endpoints.")
    security_group_ids: list[str] = Field(default_factory=list, description="VPC security groups.")
    tags: dict[str, str] = Field(default_factory=dict, description="Tags added to every resource created.")
    max_attempts: int = Field(8, ge=1, le=50, description="Attempts per call (botocore 'adaptive' retry mode).")
    multipart_threshold: int = Field(8 * 1024 * 1024, ge=5 * 1024 * 1024, description="Bytes before multipart.")
    multipart_chunksize: int = Field(8 * 1024 * 1024, ge=5 * 1024 * 1024, description="Multipart part size.")
    max_concurrency: int = Field(10, ge=1, le=64, description="Parallel transfers per upload/download.")
    max_part_buffers: int = Field(
        3, ge=1, le=64, description="Multipart parts the AWS CRT holds in memory at once, in the whole process."
    )
    max_inflight: int = Field(
        256, ge=1, le=1024, description="Requests in flight when syncing many small objects through the AWS CRT."
    )
    deploy_timeout: int = Field(1800, ge=1, description="Seconds to wait for an endpoint to be InService.")
    connect_timeout: float = Field(10.0, gt=0, le=600, description="Seconds to open a connection to AWS.")
    read_timeout: float = Field(
        60.0, gt=0, le=3600, description="Seconds to wait for AWS to answer a request (submit included)."
    )

    @field_validator("region")
    @classmethod
    def _check_region(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not is_known_region(value):
            known = known_regions()
            close = difflib.get_close_matches(value, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{value!r} is not an AWS region where SageMaker is offered{hint}")
        return value

    @field_validator("role_arn")
    @classmethod
    def _check_role(cls, value: str | None) -> str | None:
        if value is not None and not _ROLE_RE.match(value):
            raise ValueError(f"{value!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)")
        return value

    @field_validator("bucket")
    @classmethod
    def _check_bucket(cls, value: str | None) -> str | None:
        if value is not None:
            value = value.removeprefix("s3://").rstrip("/")
            if not _BUCKET_RE.match(value):
                raise ValueError(f"{value!r} is not a valid S3 bucket name")
        return value

    @field_validator("instance_types")
    @classmethod
    def _check_instance_types(cls, value: dict[str, str]) -> dict[str, str]:
        for key, itype in value.items():
            if not INSTANCE_TYPE_RE.match(itype):
                raise ValueError(f"instance_types.{key}: {itype!r} is not a SageMaker instance type (ml.FAMILY.SIZE)")
        return {k.upper() if k.lower() != "cpu" else "cpu": v for k, v in value.items()}

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        return value.strip("/")
