"""The ``local`` provider object: storage, compute and deploy on this machine."""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

from cloudbridge.interfaces import CheckReport, Provider

if TYPE_CHECKING:
    from cloudbridge.backends.local.settings import LocalSettings
    from cloudbridge.interfaces import Compute, Deploy, Storage

__all__ = ["LocalProvider"]


class LocalProvider(Provider):
    """This machine. Capabilities are built on first use and imported lazily."""

    name = "local"

    def __init__(self, settings: LocalSettings | None = None) -> None:
        if settings is None:
            from cloudbridge.backends.local.settings import LocalSettings

            settings = LocalSettings()
        super().__init__(settings)
        self._storage: Any = None
        self._compute: Any = None
        self._deploy: Any = None

    @property
    def storage(self) -> Storage:
        """Files on this machine (:class:`~cloudbridge.backends.local.storage.LocalStorage`)."""
        if self._storage is None:
            from cloudbridge.backends.local.storage import LocalStorage

            self._storage = LocalStorage(self.settings)
        return self._storage

    @property
    def compute(self) -> Compute:
        """Jobs under detached supervisors (:class:`~cloudbridge.backends.local.compute.LocalCompute`)."""
        if self._compute is None:
            from cloudbridge.backends.local.compute import LocalCompute

            self._compute = LocalCompute(self.settings)
        return self._compute

    @property
    def deploy(self) -> Deploy:
        """Local HTTP endpoints (:class:`~cloudbridge.backends.local.deploy.LocalDeploy`)."""
        if self._deploy is None:
            from cloudbridge.backends.local.deploy import LocalDeploy

            self._deploy = LocalDeploy(self.settings)
        return self._deploy

    def check(self) -> CheckReport:
        """GPUs, CPUs, memory, and whether ``CLOUDBRIDGE_HOME`` and the job folder are writable."""
        from cloudbridge.gpus import machine_info
        from cloudbridge.settings import cloudbridge_home

        report = super().check()
        info = machine_info(self.settings.gpu_indices)
        if info.gpus:
            names = ", ".join(f"{g.index}: {g.name} ({g.memory_mb // 1024} GiB)" for g in info.gpus)
            report.add("GPUs", True, f"{len(info.gpus)} via {info.gpu_source}: {names}")
        else:
            report.add(
                "GPUs", True, "none found (jobs run on CPU)",
                fix="install the NVIDIA driver and nvidia-ml-py (pip install 'cloudbridge-ai[gpu]') to use GPUs",
            )
        for note in info.notes:
            report.add("GPU setting", False, note, fix="fix CLOUDBRIDGE_LOCAL_GPUS / [local] gpus")
        report.add("CPUs", info.cpus > 0, f"{info.cpus} logical CPUs")
        report.add("memory", info.memory_gb > 0, f"{info.memory_gb:g} GiB")
        for label, path in (("home", cloudbridge_home()), ("job folder", self.settings.jobs_dir())):
            ok, detail = _writable(str(path))
            fix = None if ok else f"make {path} writable or set CLOUDBRIDGE_HOME"
            report.add(f"{label} writable", ok, detail, fix=fix)
        return report


def _writable(path: str) -> tuple[bool, str]:
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".cb-check-"):
            pass
    except OSError as exc:
        return False, f"{path}: {exc.strerror or exc}"
    return True, path
