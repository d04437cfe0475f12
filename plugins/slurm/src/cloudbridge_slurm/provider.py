"""``SlurmProvider``: settings, one command runner (local or ssh), staging storage and compute."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloudbridge.interfaces import Provider
from cloudbridge.records import CheckReport
from cloudbridge_slurm.runner import Runner
from cloudbridge_slurm.settings import SlurmSettings
from cloudbridge_slurm.storage import SlurmStorage

if TYPE_CHECKING:
    from cloudbridge_slurm.compute import SlurmCompute

__all__ = ["SlurmProvider"]


class SlurmProvider(Provider):
    """A Slurm cluster: ``sbatch`` jobs and the ``slurm://staging`` folder on its shared filesystem."""

    name = "slurm"

    def __init__(self, settings: SlurmSettings | None = None) -> None:
        super().__init__(settings if settings is not None else SlurmSettings())
        self.runner = Runner(self.settings)
        self._storage = SlurmStorage(self.runner)
        self._compute: SlurmCompute | None = None

    @property
    def storage(self) -> SlurmStorage:
        """:class:`~cloudbridge_slurm.storage.SlurmStorage` for ``slurm://staging/...``."""
        return self._storage

    @property
    def compute(self) -> SlurmCompute:
        """:class:`~cloudbridge_slurm.compute.SlurmCompute` (sbatch jobs through the managed-jobs core)."""
        if self._compute is None:
            from cloudbridge_slurm.adapter import SlurmAdapter
            from cloudbridge_slurm.compute import SlurmCompute

            self._compute = SlurmCompute(SlurmAdapter(self.runner, self._storage), self._storage)
        return self._compute

    def check(self) -> CheckReport:
        """Slurm commands, controller, partition, staging folder and (with ``login``) ssh, each with its fix."""
        from cloudbridge_slurm.checks import run_checks

        return run_checks(self)

    def resources(self) -> list[dict[str, object]]:
        """The cluster's partitions from ``sinfo --json``: nodes, GPUs per node, memory, state."""
        from cloudbridge_slurm.planner import partition_rows

        return partition_rows(self.compute.adapter.cluster(refresh=True))

    def __repr__(self) -> str:
        return f"<SlurmProvider {self.settings.login or 'local'}>"
