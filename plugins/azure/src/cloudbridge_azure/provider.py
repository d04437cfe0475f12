"""``AzureProvider``: settings, shared Azure clients, and the three capabilities built on demand."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cloudbridge.interfaces import Provider
from cloudbridge.records import CheckReport
from cloudbridge_azure.auth import AzureClients
from cloudbridge_azure.settings import AzureSettings

if TYPE_CHECKING:
    from cloudbridge_azure.storage import BlobStorage

__all__ = ["AzureProvider"]


class AzureProvider(Provider):
    """Azure Blob storage, Azure ML command jobs and managed online endpoints."""

    name = "azure"

    def __init__(self, settings: AzureSettings | None = None) -> None:
        super().__init__(settings if settings is not None else AzureSettings())
        self.clients = AzureClients(self.settings)
        self._storage: BlobStorage | None = None
        self._compute: Any = None
        self._deploy: Any = None

    @property
    def storage(self) -> BlobStorage:
        """:class:`~cloudbridge_azure.storage.BlobStorage` for ``az://`` URIs."""
        if self._storage is None:
            from cloudbridge_azure.storage import BlobStorage

            self._storage = BlobStorage(self.clients)
        return self._storage

    @property
    def compute(self) -> Any:
        """Azure ML command jobs (:mod:`cloudbridge_azure.compute`)."""
        if self._compute is None:
            from cloudbridge_azure.compute import make_compute

            self._compute = make_compute(self)
        return self._compute

    @property
    def deploy(self) -> Any:
        """Azure ML managed online endpoints (:mod:`cloudbridge_azure.deploy`)."""
        if self._deploy is None:
            from cloudbridge_azure.deploy import AzureMLDeploy

            self._deploy = AzureMLDeploy(self)
        return self._deploy

    def check(self) -> CheckReport:
        """Subscription, workspace, login, compute cluster and container, each with its fix."""
        from cloudbridge_azure.checks import run_checks

        return run_checks(self)

    def __repr__(self) -> str:
        workspace = self.settings.workspace or "no workspace"
        return f"<AzureProvider {workspace}>"
