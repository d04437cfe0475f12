"""Credentials, project and the Google clients of one provider, made on first use.

* Cloud Storage: ``google.cloud.storage.Client``. ``STORAGE_EMULATOR_HOST`` is honoured as the SDK
  does; when it is a loopback ``http://`` URL the client gets anonymous credentials.
* Vertex AI: the ``aiplatform_v1`` service clients over REST (``transport="rest"``) at
  :meth:`GcpSettings.vertex_endpoint`; anonymous credentials only when ``api_endpoint`` is a loopback
  ``http://`` URL (a fake), Application Default Credentials otherwise.

Nothing here imports a Google SDK until a client is made.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from cloudbridge.errors import AuthenticationError, InvalidSpec
from cloudbridge_gcp.errors import ADC_FIX, gcp_errors
from cloudbridge_gcp.settings import GcpSettings, is_loopback_http

__all__ = ["SCOPES", "GcpSession", "storage_emulator_host"]

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
#: The project anonymous clients use when none is configured (emulators accept any).
LOCAL_PROJECT = "cloudbridge-local"
_SERVICES = {
    "jobs": "JobServiceClient",
    "models": "ModelServiceClient",
    "endpoints": "EndpointServiceClient",
    "predict": "PredictionServiceClient",
}


def storage_emulator_host() -> str | None:
    """``STORAGE_EMULATOR_HOST`` as the storage SDK reads it (``None`` when unset)."""
    return os.environ.get("STORAGE_EMULATOR_HOST") or None


class GcpSession:
    """Lazily resolves credentials and the project, and caches one client per service."""

    def __init__(self, settings: GcpSettings) -> None:
        self.settings = settings
        self._adc: tuple[Any, str | None] | None = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    # ---- credentials -----------------------------------------------------------------------------
    def adc(self) -> tuple[Any, str | None]:
        """``(credentials, project)`` from Application Default Credentials; :class:`AuthenticationError` if none."""
        if self._adc is None:
            import google.auth
            from google.auth import exceptions as ga

            try:
                self._adc = google.auth.default(scopes=list(SCOPES))
            except ga.DefaultCredentialsError as exc:
                raise AuthenticationError(
                    "no Google Application Default Credentials found", provider="gcp", hint=ADC_FIX
                ) from exc
        return self._adc

    def vertex_is_local(self) -> bool:
        """True when Vertex AI calls go to a fake on this machine (anonymous credentials)."""
        return is_loopback_http(self.settings.api_endpoint)

    def storage_is_local(self) -> bool:
        """True when Cloud Storage calls go to an emulator on this machine (anonymous credentials)."""
        return is_loopback_http(storage_emulator_host())

    def vertex_credentials(self) -> Any:
        """Anonymous credentials for a loopback fake, else ADC."""
        if self.vertex_is_local():
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials()
        return self.adc()[0]

    # ---- project and region ----------------------------------------------------------------------
    @property
    def project(self) -> str:
        """The configured project, else the one ADC names; :class:`InvalidSpec` with the fix when none."""
        if self.settings.project:
            return self.settings.project
        if not (self.vertex_is_local() or self.storage_is_local()):
            try:
                project = self.adc()[1]
            except AuthenticationError:
                project = None
            if project:
                return project
        raise InvalidSpec(
            "no GCP project is set",
            field="settings.gcp.project",
            hint="set project in the [gcp] table of config.toml, CLOUDBRIDGE_GCP_PROJECT or GOOGLE_CLOUD_PROJECT "
            "(or `gcloud config set project ID` before `gcloud auth application-default login`)",
        )

    @property
    def region(self) -> str:
        """The Vertex AI region; :class:`InvalidSpec` with the fix when none is set."""
        if not self.settings.region:
            raise InvalidSpec(
                "no GCP region is set",
                field="settings.gcp.region",
                hint="set region in the [gcp] table of config.toml, CLOUDBRIDGE_GCP_REGION or GOOGLE_CLOUD_REGION",
            )
        return self.settings.region

    @property
    def parent(self) -> str:
        """``projects/PROJECT/locations/REGION``: the parent of every Vertex AI resource."""
        return f"projects/{self.project}/locations/{self.region}"

    # ---- clients ---------------------------------------------------------------------------------
    def storage_client(self) -> Any:
        """The cached ``google.cloud.storage.Client``."""
        with self._lock:
            if "storage" not in self._clients:
                from google.cloud import storage

                with gcp_errors("open a Cloud Storage client", service="storage"):
                    if self.storage_is_local():
                        from google.auth.credentials import AnonymousCredentials

                        client = storage.Client(project=self.settings.project or LOCAL_PROJECT,
                                                credentials=AnonymousCredentials())
                    else:
                        credentials, project = self.adc()
                        client = storage.Client(project=self.settings.project or project or LOCAL_PROJECT,
                                                credentials=credentials)
                self._clients["storage"] = client
            return self._clients["storage"]

    def vertex(self, service: str) -> Any:
        """A cached ``aiplatform_v1`` client: ``jobs``, ``models``, ``endpoints`` or ``predict``."""
        with self._lock:
            if service not in self._clients:
                from google.api_core.client_options import ClientOptions
                from google.cloud import aiplatform_v1

                cls = getattr(aiplatform_v1, _SERVICES[service])
                options = ClientOptions(api_endpoint=self.settings.vertex_endpoint())
                with gcp_errors("open a Vertex AI client"):
                    self._clients[service] = cls(
                        transport="rest", client_options=options, credentials=self.vertex_credentials()
                    )
            return self._clients[service]
