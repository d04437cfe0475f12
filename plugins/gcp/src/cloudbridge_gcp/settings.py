"""``GcpSettings``: everything the GCP provider needs, validated by pydantic.

Resolution (lowest precedence first, see :func:`cloudbridge.settings.resolve_settings`): the
standard Google environment (``GOOGLE_CLOUD_PROJECT``/``CLOUDSDK_CORE_PROJECT``,
``GOOGLE_CLOUD_REGION``/``CLOUDSDK_COMPUTE_REGION``, through this plugin's
``cloudbridge_resolve_settings`` hook) < the ``[gcp]`` table of the ``config.toml`` profile <
``CLOUDBRIDGE_GCP_*`` variables < a job's ``overrides.gcp``.

Credentials are Application Default Credentials (``gcloud auth application-default login``, a
service-account key named by ``GOOGLE_APPLICATION_CREDENTIALS``, or the metadata server). The one
exception: when ``api_endpoint`` (Vertex AI) or ``STORAGE_EMULATOR_HOST`` (Cloud Storage) is a
loopback ``http://`` URL -- a fake or an emulator on this machine -- anonymous credentials are used
for that service, and only for it (:func:`is_loopback_http`).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from cloudbridge.settings import ProviderSettings

__all__ = ["VERTEX_REGIONS", "GcpSettings", "is_loopback_http", "nearest_region"]

_PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[a-z0-9.-]+\.[a-z]{2,}$")
_RESERVATION_RE = re.compile(
    r"^(projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/zones/[a-z0-9-]+/reservations/)?[a-z][a-z0-9-]{0,62}$"
)

#: Regions where Vertex AI custom training is offered (https://cloud.google.com/vertex-ai/docs/general/locations).
VERTEX_REGIONS = frozenset(
    {
        "africa-south1", "asia-east1", "asia-east2", "asia-northeast1", "asia-northeast2", "asia-northeast3",
        "asia-south1", "asia-southeast1", "asia-southeast2", "australia-southeast1", "australia-southeast2",
        "europe-central2", "europe-north1", "europe-southwest1", "europe-west1", "europe-west2", "europe-west3",
        "europe-west4", "europe-west6", "europe-west8", "europe-west9", "europe-west12", "me-central1",
        "me-central2", "me-west1", "northamerica-northeast1", "northamerica-northeast2", "southamerica-east1",
        "southamerica-west1", "us-central1", "us-east1", "us-east4", "us-east5", "us-south1", "us-west1",
        "us-west2", "us-west3", "us-west4",
    }
)


def nearest_region(value: str) -> str | None:
    """The Vertex AI region spelled most like ``value`` (``None`` when nothing is close)."""
    close = difflib.get_close_matches(value, sorted(VERTEX_REGIONS), n=1, cutoff=0.6)
    return close[0] if close else None


def is_loopback_http(url: str | None) -> bool:
    """True for a plain ``http://`` URL on this machine (127.0.0.0/8, ``::1`` or ``localhost``).

    Only such endpoints -- fakes and emulators started by tests -- get anonymous credentials.
    """
    if not url:
        return False
    parts = urlsplit(url if "://" in url else f"https://{url}")
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


class GcpSettings(ProviderSettings):
    """Settings of the ``gcp`` provider (env prefix ``CLOUDBRIDGE_GCP_``)."""

    model_config = SettingsConfigDict(env_prefix="CLOUDBRIDGE_GCP_", extra="forbid", env_ignore_empty=True)

    project: str | None = Field(None, description="Google Cloud project id, e.g. 'my-project-123'.")
    region: str | None = Field(None, description="Vertex AI region, e.g. 'us-central1'.")
    staging_bucket: str | None = Field(
        None, description="GCS bucket for code packages, default outputs and models (name or gs://name)."
    )
    prefix: str = Field("cloudbridge", description="Key prefix inside the staging bucket.")
    service_account: str | None = Field(
        None, description="Service account jobs and endpoints run as (default: the Vertex AI service agent)."
    )
    network: str | None = Field(
        None, description="VPC network for peering: projects/NUMBER/global/networks/NAME."
    )
    image: str | None = Field(None, description="Training image URI (default: Vertex AI's prebuilt PyTorch image).")
    serving_image: str | None = Field(
        None, description="Serving image URI (default: REGION-docker.pkg.dev/PROJECT/cloudbridge/serve:latest)."
    )
    api_endpoint: str | None = Field(
        None,
        description="Vertex AI endpoint (default: REGION-aiplatform.googleapis.com); "
        "http://127.0.0.1:PORT points the plugin at a fake.",
    )
    reservation: str | None = Field(
        None, description="A Compute Engine reservation the jobs consume (reservation affinity)."
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Labels added to every resource created.")
    boot_disk_gb: int = Field(100, ge=100, le=64000, description="Boot disk per replica (pd-ssd), GB.")
    chunk_size: int = Field(
        8 * 1024 * 1024, ge=256 * 1024, description="Resumable upload chunk size (a multiple of 256 KiB)."
    )
    max_concurrency: int = Field(8, ge=1, le=64, description="Parallel transfers in a sync.")
    timeout: float = Field(60.0, gt=0, le=3600, description="Seconds to wait for one API answer.")
    deploy_timeout: int = Field(1800, ge=1, description="Seconds to wait for a model to be deployed.")
    poll_interval: float = Field(10.0, gt=0, le=600, description="Seconds between job state and log polls.")

    @field_validator("project")
    @classmethod
    def _check_project(cls, value: str | None) -> str | None:
        if value is not None and not _PROJECT_RE.match(value):
            raise ValueError(
                f"{value!r} is not a Google Cloud project id (6-30 lower-case letters, digits or '-', "
                "starting with a letter)"
            )
        return value

    @field_validator("region")
    @classmethod
    def _check_region(cls, value: str | None) -> str | None:
        if value is None or value in VERTEX_REGIONS:
            return value
        close = nearest_region(value)
        hint = f" (did you mean {close!r}?)" if close else ""
        raise ValueError(f"{value!r} is not a region where Vertex AI is offered{hint}")

    @field_validator("staging_bucket")
    @classmethod
    def _check_bucket(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.removeprefix("gs://").rstrip("/")
        if "/" in value or not _BUCKET_RE.match(value) or ".." in value:
            raise ValueError(f"{value!r} is not a valid GCS bucket name (a bucket, not a path)")
        return value

    @field_validator("service_account")
    @classmethod
    def _check_account(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL_RE.match(value):
            raise ValueError(f"{value!r} is not a service account e-mail (NAME@PROJECT.iam.gserviceaccount.com)")
        return value

    @field_validator("network")
    @classmethod
    def _check_network(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^projects/[^/]+/global/networks/[^/]+$", value):
            raise ValueError(f"{value!r} is not a network name (projects/PROJECT_NUMBER/global/networks/NAME)")
        return value

    @field_validator("reservation")
    @classmethod
    def _check_reservation(cls, value: str | None) -> str | None:
        if value is not None and not _RESERVATION_RE.match(value):
            raise ValueError(
                f"{value!r} is not a reservation name (NAME or projects/PROJECT/zones/ZONE/reservations/NAME)"
            )
        return value

    @field_validator("api_endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.rstrip("/")
        parts = urlsplit(value if "://" in value else f"https://{value}")
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError(f"{value!r} is not an endpoint URL (https://HOST or http://127.0.0.1:PORT)")
        if parts.scheme == "http" and not is_loopback_http(value):
            raise ValueError(f"{value!r}: plain http is only allowed for a fake on this machine; use https://")
        return value

    @field_validator("chunk_size")
    @classmethod
    def _check_chunk(cls, value: int) -> int:
        if value % (256 * 1024):
            raise ValueError(f"{value} is not a multiple of 262144 (256 KiB), as GCS resumable uploads require")
        return value

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        return value.strip("/")

    def vertex_endpoint(self) -> str:
        """Where Vertex AI calls go: ``api_endpoint``, else ``REGION-aiplatform.googleapis.com``."""
        if self.api_endpoint:
            return self.api_endpoint
        if not self.region:
            from cloudbridge.errors import InvalidSpec

            raise InvalidSpec(
                "no GCP region is set",
                field="settings.gcp.region",
                hint="set region in the [gcp] table of config.toml, CLOUDBRIDGE_GCP_REGION or overrides.gcp.region",
            )
        return f"https://{self.region}-aiplatform.googleapis.com"
