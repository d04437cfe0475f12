"""Azure ML command jobs: the core's :class:`~cloudbridge.managed.compute.ManagedCompute` on
:class:`~cloudbridge_azure.adapter.AzureMLAdapter` (ids ``azure-<job name>``).

The workdir becomes the job's *code asset*, uploaded through the SDK's own handshake
(``codes/NAME/versions?hash=`` finds identical content, else ``startPendingUpload`` hands out a SAS
URI into the workspace storage, the files go there and ``PUT codes/NAME/versions/V`` registers them);
unchanged code is not uploaded twice. A named compute cluster is checked in :meth:`validate` (so by
``run --dry-run`` too): more nodes than its maximum is bad input, refused before anything is uploaded or
created.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING

from cloudbridge.errors import InvalidSpec, NotFound
from cloudbridge.managed.compute import ManagedCompute
from cloudbridge.specs import JobSpec, spec_error
from cloudbridge_azure.adapter import AzureMLAdapter
from cloudbridge_azure.errors import azure_errors
from cloudbridge_azure.settings import SERVERLESS

if TYPE_CHECKING:
    from cloudbridge_azure.provider import AzureProvider

__all__ = ["AzureMLCompute", "make_compute"]


class AzureMLCompute(ManagedCompute):
    """:class:`~cloudbridge.interfaces.Compute` on Azure ML command jobs (ids ``azure-<job name>``)."""

    adapter: AzureMLAdapter

    def __init__(self, provider: AzureProvider) -> None:
        super().__init__(AzureMLAdapter(provider), provider.storage)
        self.provider = provider
        self.settings = provider.settings

    def check_cluster(self, spec: JobSpec) -> None:
        """Refuse more nodes than the named compute cluster's maximum (serverless has no maximum)."""
        if self.settings.compute == SERVERLESS:
            return
        from cloudbridge_azure.checks import cluster_max_nodes

        try:
            maximum = cluster_max_nodes(self.provider, self.settings.compute)
        except NotFound as exc:
            raise InvalidSpec(f"compute cluster {self.settings.compute!r} does not exist in workspace "
                              f"{self.settings.workspace}", field="settings.azure.compute",
                              hint="create it (az ml compute create --type AmlCompute) or set compute = "
                              "'serverless'") from exc
        if spec.resources.nodes > maximum:
            raise spec_error(spec, "resources.nodes", f"{spec.resources.nodes} nodes is above the maximum of "
                             f"compute cluster {self.settings.compute!r} ({maximum})",
                             hint=f"az ml compute update -n {self.settings.compute} --max-instances "
                             f"{spec.resources.nodes}, or ask for fewer nodes")

    def validate(self, spec: JobSpec) -> str:
        """The core's checks, then the cluster's node maximum (a read, nothing created): what
        ``run --dry-run`` and :meth:`submit` both run before anything is uploaded."""
        name = super().validate(spec)
        self.check_cluster(spec)
        return name

    def upload_code(self, spec: JobSpec) -> tuple[str, int]:
        """Register the workdir as a code asset (SDK upload handshake); ``(code version id, bytes)``."""
        from cloudbridge.packaging import scan_workdir

        workdir = spec.resolved_workdir()
        if workdir is None:
            raise InvalidSpec("Azure ML jobs need a workdir to ship", source=spec.source, field="workdir")
        manifest = scan_workdir(workdir, hash_files=False)
        with tempfile.TemporaryDirectory(prefix="cb-azure-code-") as tmp:
            root = os.path.join(tmp, "code")
            os.makedirs(root)
            for entry in manifest.entries:
                dest = os.path.join(root, entry.path)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                shutil.copy2(os.path.join(manifest.root, entry.path), dest)
            if not manifest.entries:
                with open(os.path.join(root, ".cloudbridge-empty"), "w") as handle:
                    handle.write("no files in the workdir\n")
            from azure.ai.ml.entities._assets._artifacts.code import Code  # not re-exported by the SDK

            ml = self.adapter.ml
            with azure_errors("upload the code to Azure ML", resource=str(workdir)):
                code = ml._code.create_or_update(Code(path=root))
        return code.id, sum(e.size for e in manifest.entries)


def make_compute(provider: AzureProvider) -> AzureMLCompute:
    """The provider's compute (used by :attr:`AzureProvider.compute`)."""
    return AzureMLCompute(provider)
