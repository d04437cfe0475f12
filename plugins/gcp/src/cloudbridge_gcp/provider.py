"""``GcpProvider``: settings, one session, and the three capabilities built on demand."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloudbridge.interfaces import Provider
from cloudbridge.records import CheckReport
from cloudbridge_gcp.session import GcpSession
from cloudbridge_gcp.settings import GcpSettings

if TYPE_CHECKING:
    from cloudbridge_gcp.compute import VertexCompute
    from cloudbridge_gcp.deploy import VertexDeploy
    from cloudbridge_gcp.storage import GcsStorage

__all__ = ["GcpProvider"]


class GcpProvider(Provider):
    """Google Cloud Storage, Vertex AI custom jobs and Vertex AI endpoints."""

    name = "gcp"

    def __init__(self, settings: GcpSettings | None = None) -> None:
        super().__init__(settings if settings is not None else GcpSettings())
        self.session = GcpSession(self.settings)
        self._storage: GcsStorage | None = None
        self._compute: VertexCompute | None = None
        self._deploy: VertexDeploy | None = None

    @property
    def storage(self) -> GcsStorage:
        """:class:`~cloudbridge_gcp.storage.GcsStorage` for ``gs://`` URIs."""
        if self._storage is None:
            from cloudbridge_gcp.storage import GcsStorage

            self._storage = GcsStorage(self.session)
        return self._storage

    @property
    def compute(self) -> VertexCompute:
        """:class:`~cloudbridge_gcp.compute.VertexCompute` (Vertex AI custom jobs)."""
        if self._compute is None:
            from cloudbridge_gcp.compute import VertexCompute

            self._compute = VertexCompute(self.session, self.storage)
        return self._compute

    @property
    def deploy(self) -> VertexDeploy:
        """:class:`~cloudbridge_gcp.deploy.VertexDeploy` (Vertex AI endpoints)."""
        if self._deploy is None:
            from cloudbridge_gcp.deploy import VertexDeploy

            self._deploy = VertexDeploy(self.session, self.storage)
        return self._deploy

    def check(self) -> CheckReport:
        """Project, credentials, region, Vertex AI API, staging bucket and IAM, each with its fix."""
        from cloudbridge_gcp.checks import run_checks

        return run_checks(self)

    def __repr__(self) -> str:
        where = "/".join(p for p in (self.settings.project, self.settings.region) if p) or "unconfigured"
        return f"<GcpProvider {where}>"
