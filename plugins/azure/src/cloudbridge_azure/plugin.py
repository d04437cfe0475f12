"""Registration of the ``azure`` provider: strings and plain data only, no Azure SDK import."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cloudbridge.hookspecs import ProviderInfo, hookimpl

CLOUDBRIDGE_PLUGIN_API = 1


@hookimpl
def cloudbridge_register_providers(register: Callable[[ProviderInfo], None]) -> None:
    """Register the ``azure`` provider (Blob storage, Azure ML jobs, managed online endpoints)."""
    register(
        ProviderInfo(
            name="azure",
            factory="cloudbridge_azure.provider:AzureProvider",
            settings="cloudbridge_azure.settings:AzureSettings",
            capabilities={"storage", "compute", "deploy"},
            schemes=("az",),
            install_hint="pip install cloudbridge-azure",
            description="Azure Blob storage, Azure ML command jobs and managed online endpoints",
        )
    )


@hookimpl
def cloudbridge_resolve_settings(provider: str, profile: str | None) -> dict[str, Any] | None:
    """Lowest-precedence Azure settings from the standard Azure environment variables.

    ``AZURE_SUBSCRIPTION_ID`` fills ``subscription_id`` unless ``config.toml``,
    ``CLOUDBRIDGE_AZURE_*`` or the job's ``overrides.azure`` set it. Credentials stay with
    azure-identity's ``DefaultAzureCredential`` and are never copied here.
    """
    if provider != "azure":
        return None
    values: dict[str, Any] = {}
    if os.environ.get("AZURE_SUBSCRIPTION_ID"):
        values["subscription_id"] = os.environ["AZURE_SUBSCRIPTION_ID"]
    return values or None
