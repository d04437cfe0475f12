"""The ``dirstore`` provider object: settings in, storage and compute out."""

from __future__ import annotations

import os
from typing import Any

from cloudbridge.interfaces import CheckReport, Compute, Provider, Storage
from cloudbridge_dirstore.settings import DirstoreSettings


class DirstoreProvider(Provider):
    """Buckets as directories and jobs as local processes, under one root folder."""

    name = "dirstore"

    def __init__(self, settings: DirstoreSettings | None = None) -> None:
        super().__init__(settings or DirstoreSettings())
        self._storage: Any = None
        self._compute: Any = None

    @property
    def storage(self) -> Storage:
        """:class:`~cloudbridge_dirstore.storage.DirStorage` under ``<root>/buckets``."""
        if self._storage is None:
            from cloudbridge_dirstore.storage import DirStorage

            self._storage = DirStorage(self.settings.root_dir(), create_buckets=self.settings.create_buckets)
        return self._storage

    @property
    def compute(self) -> Compute:
        """:class:`~cloudbridge_dirstore.compute.DirCompute` with job folders under ``<root>/jobs``."""
        if self._compute is None:
            from cloudbridge_dirstore.compute import DirCompute

            self._compute = DirCompute(self.settings.root_dir(), kill_grace=self.settings.kill_grace)
        return self._compute

    def check(self) -> CheckReport:
        """The root folder exists and is writable; lists the buckets found."""
        report = super().check()
        root = self.settings.root_dir()
        writable = os.access(root, os.W_OK)
        report.add("root writable", writable, str(root), fix=None if writable else f"chmod u+w {root}")
        buckets = (
            sorted(p.name for p in (root / "buckets").glob("*") if p.is_dir()) if (root / "buckets").is_dir() else []
        )
        report.add(
            "buckets",
            True,
            ", ".join(buckets) or "none yet",
            fix=None if buckets else f"create one: mkdir -p {root / 'buckets' / 'my-bucket'}",
        )
        return report
