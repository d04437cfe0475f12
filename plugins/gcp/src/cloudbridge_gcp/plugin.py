"""Registration of the ``gcp`` provider: strings and plain data only, no Google SDK import."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cloudbridge.hookspecs import ProviderInfo, hookimpl

CLOUDBRIDGE_PLUGIN_API = 1


@hookimpl
def cloudbridge_register_providers(register: Callable[[ProviderInfo], None]) -> None:
    """Register the ``gcp`` provider (GCS, Vertex AI custom jobs, Vertex AI endpoints)."""
    register(
        ProviderInfo(
            name="gcp",
            factory="cloudbridge_gcp.provider:GcpProvider",
            settings="cloudbridge_gcp.settings:GcpSettings",
            capabilities={"storage", "compute", "deploy"},
            schemes=("gs",),
            install_hint="pip install cloudbridge-gcp",
            description="Google Cloud Storage, Vertex AI custom jobs and Vertex AI endpoints",
        )
    )


@hookimpl
def cloudbridge_resolve_settings(provider: str, profile: str | None) -> dict[str, Any] | None:
    """Lowest-precedence GCP settings from the standard Google environment variables.

    ``GOOGLE_CLOUD_PROJECT`` (or ``CLOUDSDK_CORE_PROJECT``) and ``GOOGLE_CLOUD_REGION`` (or
    ``CLOUDSDK_COMPUTE_REGION``) fill ``project`` and ``region`` unless ``config.toml``,
    ``CLOUDBRIDGE_GCP_*`` or the job's ``overrides.gcp`` set them. Credentials stay with
    Application Default Credentials and are never copied here.
    """
    if provider != "gcp":
        return None
    values: dict[str, Any] = {}
    project = os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("CLOUDSDK_CORE_PROJECT")
    if project:
        values["project"] = project
    region = os.environ.get("GOOGLE_CLOUD_REGION") or os.environ.get("CLOUDSDK_COMPUTE_REGION")
    if region:
        values["region"] = region
    return values or None
