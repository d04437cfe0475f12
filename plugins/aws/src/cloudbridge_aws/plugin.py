"""Registration of the ``aws`` provider: strings and plain data only, no boto3 import."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cloudbridge.hookspecs import ProviderInfo, hookimpl

CLOUDBRIDGE_PLUGIN_API = 1


@hookimpl
def cloudbridge_register_providers(register: Callable[[ProviderInfo], None]) -> None:
    """Register the ``aws`` provider (S3, SageMaker training, SageMaker endpoints)."""
    register(
        ProviderInfo(
            name="aws",
            factory="cloudbridge_aws.provider:AwsProvider",
            settings="cloudbridge_aws.settings:AwsSettings",
            capabilities={"storage", "compute", "deploy"},
            schemes=("s3",),
            install_hint="pip install cloudbridge-aws",
            description="Amazon S3, SageMaker training jobs and SageMaker endpoints",
        )
    )


@hookimpl
def cloudbridge_resolve_settings(provider: str, profile: str | None) -> dict[str, Any] | None:
    """Lowest-precedence AWS settings from the standard AWS environment variables.

    ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_PROFILE`` and ``AWS_ENDPOINT_URL`` fill ``region``,
    ``profile`` and ``endpoint_url`` unless ``config.toml``, ``CLOUDBRIDGE_AWS_*`` or the job's
    ``overrides.aws`` set them. Credentials stay with boto3's own chain and are never copied here.
    """
    if provider != "aws":
        return None
    values: dict[str, Any] = {}
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        values["region"] = region
    if os.environ.get("AWS_PROFILE"):
        values["profile"] = os.environ["AWS_PROFILE"]
    if os.environ.get("AWS_ENDPOINT_URL"):
        values["endpoint_url"] = os.environ["AWS_ENDPOINT_URL"]
    return values or None
