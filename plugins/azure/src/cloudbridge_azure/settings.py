"""``AzureSettings``: everything the Azure provider needs, validated by pydantic.

Resolution (lowest precedence first, see :func:`cloudbridge.settings.resolve_settings`):
``AZURE_SUBSCRIPTION_ID`` (through this plugin's ``cloudbridge_resolve_settings`` hook) < the
``[azure]`` table of the ``config.toml`` profile < ``CLOUDBRIDGE_AZURE_*`` variables < a job's
``overrides.azure``. Credentials come from azure-identity's ``DefaultAzureCredential`` (environment,
workload identity, managed identity, ``az login``); Blob storage also honours
``AZURE_STORAGE_CONNECTION_STRING``. When ``arm_endpoint`` is a loopback URL (a local fake) a static
test token is used instead, and only for loopback endpoints (see :mod:`cloudbridge_azure.auth`).
"""

from __future__ import annotations

import difflib
import re
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from cloudbridge.settings import ProviderSettings

__all__ = ["AZUREML_REGIONS", "SERVERLESS", "VM_SIZE_RE", "AzureSettings", "is_loopback_url"]

#: ``compute`` value that asks for Azure ML serverless compute instead of a named cluster.
SERVERLESS = "serverless"
#: An Azure VM size (``Standard_NC24ads_A100_v4``).
VM_SIZE_RE = re.compile(r"^(Standard|Basic)_[A-Za-z0-9_]+$")
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_RG_RE = re.compile(r"^[-\w._()]{1,90}$")
_WORKSPACE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,32}$")
_COMPUTE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,31}$")
_ACCOUNT_RE = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER_RE = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")

#: Regions where Azure Machine Learning is offered (public cloud, from the product availability page).
AZUREML_REGIONS = frozenset(
    {
        "australiacentral", "australiaeast", "australiasoutheast", "brazilsouth", "canadacentral", "canadaeast",
        "centralindia", "centralus", "eastasia", "eastus", "eastus2", "francecentral", "germanywestcentral",
        "israelcentral", "italynorth", "japaneast", "japanwest", "koreacentral", "koreasouth", "mexicocentral",
        "northcentralus", "northeurope", "norwayeast", "polandcentral", "qatarcentral", "southafricanorth",
        "southcentralus", "southeastasia", "southindia", "spaincentral", "swedencentral", "switzerlandnorth",
        "switzerlandwest", "uaenorth", "uksouth", "ukwest", "westcentralus", "westeurope", "westus", "westus2",
        "westus3",
    }
)


def is_loopback_url(url: str | None) -> bool:
    """True when ``url`` points at this machine (``127.0.0.1``, ``::1`` or ``localhost``)."""
    if not url:
        return False
    import ipaddress

    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check(pattern: re.Pattern[str], value: str | None, what: str) -> str | None:
    if value is not None and not pattern.match(value):
        raise ValueError(f"{value!r} is not a valid {what}")
    return value


class AzureSettings(ProviderSettings):
    """Settings of the ``azure`` provider (env prefix ``CLOUDBRIDGE_AZURE_``)."""

    model_config = SettingsConfigDict(env_prefix="CLOUDBRIDGE_AZURE_", extra="forbid", env_ignore_empty=True)

    subscription_id: str | None = Field(None, description="Azure subscription id (a GUID).")
    resource_group: str | None = Field(None, description="Resource group of the Azure ML workspace.")
    workspace: str | None = Field(None, description="Azure ML workspace name.")
    region: str | None = Field(None, description="Workspace region (e.g. 'eastus'), for prices and checks.")
    compute: str = Field(SERVERLESS, description="Compute cluster name, or 'serverless'.")
    storage_account: str | None = Field(None, description="Storage account for code, outputs and models.")
    container: str | None = Field(None, description="Blob container in storage_account for cloudbridge's files.")
    prefix: str = Field("cloudbridge", description="Blob name prefix inside the container.")
    environment: str = Field(
        "azureml://registries/azureml/environments/acpt-pytorch-2.2-cuda12.1/labels/latest",
        description="Azure ML environment the jobs run in (must have cloudbridge-ai installed, or pip it).",
    )
    serving_environment: str | None = Field(
        None, description="Environment of online deployments (default: the jobs' environment)."
    )
    arm_endpoint: str | None = Field(
        None, description="Send Azure ML (ARM) calls here instead of management.azure.com (a local fake)."
    )
    blob_endpoint: str | None = Field(
        None, description="Blob endpoint of the account, e.g. http://127.0.0.1:10000/devstoreaccount1 (Azurite)."
    )
    instance_types: dict[str, str] = Field(
        default_factory=dict, description="Accelerator name (or 'cpu') -> VM size, overriding the catalog's choice."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Tags added to every job and endpoint.")
    max_concurrency: int = Field(8, ge=1, le=64, description="Parallel block transfers per upload/download.")
    block_size: int = Field(8 * 1024 * 1024, ge=64 * 1024, le=4000 * 1024 * 1024, description="Block bytes.")
    single_put_size: int = Field(
        8 * 1024 * 1024, ge=1, le=5000 * 1024 * 1024, description="Bytes up to which a blob is one Put Blob."
    )
    list_page_size: int = Field(5000, ge=1, le=5000, description="Blobs per listing page.")
    retry_total: int = Field(6, ge=0, le=20, description="Attempts per call (azure-core retry policy).")
    deploy_timeout: int = Field(1800, ge=1, description="Seconds to wait for an online deployment.")
    poll_interval: float = Field(5.0, gt=0, le=300, description="Seconds between job and deployment polls.")
    max_endpoint_instances: int = Field(
        50, ge=1, le=1000, description="Most instances one online deployment may have (Azure's default limit)."
    )
    autoscale_cpu_out: int = Field(70, ge=1, le=100, description="Add an endpoint instance above this CPU %.")
    autoscale_cpu_in: int = Field(30, ge=0, le=99, description="Remove an endpoint instance below this CPU %.")

    @field_validator("subscription_id")
    @classmethod
    def _check_subscription(cls, value: str | None) -> str | None:
        return _check(_GUID_RE, value, "subscription id (a GUID such as 00000000-0000-0000-0000-000000000000)")

    @field_validator("resource_group")
    @classmethod
    def _check_rg(cls, value: str | None) -> str | None:
        return _check(_RG_RE, value, "resource group name")

    @field_validator("workspace")
    @classmethod
    def _check_workspace(cls, value: str | None) -> str | None:
        return _check(_WORKSPACE_RE, value, "Azure ML workspace name (3-33 letters, digits, '-' or '_')")

    @field_validator("compute")
    @classmethod
    def _check_compute(cls, value: str) -> str:
        if value == SERVERLESS:
            return value
        return _check(_COMPUTE_RE, value, "compute cluster name (2-32 letters, digits or '-'), or 'serverless'") or ""

    @field_validator("storage_account")
    @classmethod
    def _check_account(cls, value: str | None) -> str | None:
        return _check(_ACCOUNT_RE, value, "storage account name (3-24 lowercase letters and digits)")

    @field_validator("container")
    @classmethod
    def _check_container(cls, value: str | None) -> str | None:
        return _check(_CONTAINER_RE, value, "blob container name (3-63 lowercase letters, digits and '-')")

    @field_validator("region")
    @classmethod
    def _check_region(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.lower().replace(" ", "")
        if value not in AZUREML_REGIONS:
            close = difflib.get_close_matches(value, sorted(AZUREML_REGIONS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{value!r} is not an Azure region where Azure ML is offered{hint}")
        return value

    @field_validator("arm_endpoint", "blob_endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("instance_types")
    @classmethod
    def _check_instance_types(cls, value: dict[str, str]) -> dict[str, str]:
        for key, size in value.items():
            if not VM_SIZE_RE.match(size):
                raise ValueError(f"instance_types.{key}: {size!r} is not an Azure VM size (Standard_...)")
        return {k.upper() if k.lower() != "cpu" else "cpu": v for k, v in value.items()}

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        return value.strip("/")

    @model_validator(mode="after")
    def _check_autoscale(self) -> AzureSettings:
        if self.autoscale_cpu_in >= self.autoscale_cpu_out:
            raise ValueError(f"autoscale_cpu_in ({self.autoscale_cpu_in}) must be below autoscale_cpu_out "
                             f"({self.autoscale_cpu_out})")
        return self

    @property
    def bucket(self) -> str | None:
        """``az://ACCOUNT/CONTAINER`` when both are set: where ``cloudbridge migrate --to azure`` puts data."""
        if self.storage_account and self.container:
            return f"az://{self.storage_account}/{self.container}"
        return None

    @property
    def uses_fake(self) -> bool:
        """True when Azure ML calls go to a loopback endpoint (a local fake, no login)."""
        return is_loopback_url(self.arm_endpoint)
