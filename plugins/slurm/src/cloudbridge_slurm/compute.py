"""``SlurmCompute``: the managed-jobs core driving :class:`~cloudbridge_slurm.adapter.SlurmAdapter`.

Budgets, ``max_runtime`` (``--time``), ``start_timeout``, restarts after preemption, failure reasons
with the log tail, events and log follow are the core's (:class:`~cloudbridge.managed.compute.ManagedCompute`).
This class adds what only an on-premise cluster needs: the job's ``exit_code``, its
``CB_METRICS_FILE`` as ``Job.metrics``, and local output paths fetched back from the staging folder
once the job has ended.
"""

from __future__ import annotations

import json
from pathlib import Path

from cloudbridge.errors import CloudbridgeError
from cloudbridge.managed.compute import ManagedCompute
from cloudbridge.records import Job
from cloudbridge_slurm.adapter import SlurmAdapter
from cloudbridge_slurm.storage import SlurmStorage

__all__ = ["SlurmCompute"]


class SlurmCompute(ManagedCompute):
    """:class:`~cloudbridge.interfaces.Compute` on a Slurm cluster (job ids ``slurm-<name>``)."""

    adapter: SlurmAdapter

    def __init__(self, adapter: SlurmAdapter, storage: SlurmStorage) -> None:
        super().__init__(adapter, storage)
        self._fetched: set[str] = set()
        self._metrics_cache: dict[str, dict[str, object]] = {}

    def get(self, job_id: str) -> Job:
        """The job's state; once it has ended, its local outputs are copied back (once per process)."""
        job = super().get(job_id)
        code = job.extra.get("exit_code")
        if job.state.is_terminal and isinstance(code, int):
            job.exit_code = code
        if job.state.is_terminal and job.native_id and job.native_id not in self._fetched:
            self._fetch_outputs(job)
        if job.state.is_terminal and job.native_id and not job.metrics:
            job.metrics = self._metrics(job.native_id)
        return job

    def _metrics(self, native_id: str) -> dict[str, object]:
        """The JSON object the job wrote to ``CB_METRICS_FILE`` (``{}`` when none); read once per job."""
        if native_id not in self._metrics_cache:
            try:
                data = json.loads(self.adapter.storage.read_bytes(SlurmStorage.uri(f"jobs/{native_id}/metrics.json")))
            except (CloudbridgeError, ValueError):
                data = {}
            self._metrics_cache[native_id] = data if isinstance(data, dict) else {}
        return dict(self._metrics_cache[native_id])

    def _fetch_outputs(self, job: Job) -> None:
        """Copy each local output channel from the newest attempt's folder; report failures in ``extra``."""
        assert job.native_id is not None
        try:
            request = self.adapter.meta(job.native_id)["request"]
        except CloudbridgeError:
            return
        fetched: dict[str, int] = {}
        for channel, (folder, local) in (request.get("fetch") or {}).items():
            try:
                key = folder[len(self.adapter.storage.root):].lstrip("/")
                fetched[channel] = self.adapter.storage.get_tree(SlurmStorage.uri(key), Path(local))
            except CloudbridgeError as exc:
                job.extra.setdefault("warnings", []).append(f"output {channel}: cannot fetch {folder}: {exc}")
        if fetched:
            job.extra["fetched_outputs"] = fetched
        self._fetched.add(job.native_id)
