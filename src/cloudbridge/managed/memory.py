"""The in-memory reference adapter: a whole managed-training plugin's compute, in one small module.

:class:`MemoryService` stands in for a cloud (a dict of jobs that tests move from state to state);
:class:`MemoryAdapter` is everything a real plugin writes for its compute -- a state table, failure
rules, a pure request builder, and five calls. ``docs/plugins.md`` ("Writing a managed-training
plugin") walks through it; ``cloudbridge.testing.ManagedComputeConformance`` runs against it.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cloudbridge.errors import ConflictError, NotFound, StageTimeout
from cloudbridge.managed.adapter import ManagedAdapter, Placement, Snapshot, restart_name, restart_number
from cloudbridge.managed.limits import ATTEMPT_TAG, LIMITS_TAG, RESTART_OF_TAG, Limits
from cloudbridge.reasons import IMAGE_PULL_FAILED, NON_ZERO_EXIT, OUT_OF_MEMORY, QUOTA_EXCEEDED
from cloudbridge.records import JobState

__all__ = ["MemoryAdapter", "MemoryJob", "MemoryService"]


@dataclass
class MemoryJob:
    """One job of the pretend service: its request, status and what it logged."""

    request: dict[str, Any]
    status: str = "QUEUED"  # QUEUED PROVISIONING RUNNING SUCCEEDED FAILED STOPPED TIMED_OUT PREEMPTED
    message: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    used: float = 0.0
    preemptions: int = 0
    logs: list[str] = field(default_factory=list)


class MemoryService:
    """The pretend cloud: jobs by name. Every :class:`MemoryAdapter` on it is like another process."""

    def __init__(self) -> None:
        self.jobs: dict[str, MemoryJob] = {}
        self.lock = threading.Lock()


class MemoryAdapter(ManagedAdapter):
    """:class:`ManagedAdapter` for :class:`MemoryService` (provider ``memory``)."""

    provider = "memory"
    service = "Memory"
    states = {"QUEUED": JobState.PENDING, "PROVISIONING": JobState.STARTING, "RUNNING": JobState.RUNNING,
              "SUCCEEDED": JobState.SUCCEEDED, "FAILED": JobState.FAILED, "STOPPED": JobState.CANCELLED,
              "TIMED_OUT": JobState.FAILED, "PREEMPTED": JobState.FAILED}
    reasons = tuple((re.compile(p, re.IGNORECASE), r) for p, r in (
        (r"quota", QUOTA_EXCEEDED), (r"out of memory", OUT_OF_MEMORY),
        (r"image", IMAGE_PULL_FAILED), (r"exit code", NON_ZERO_EXIT)))
    longest_runtime = 7 * 24 * 3600

    def __init__(self, service: MemoryService, code_prefix: str, catalog: Any = None) -> None:
        self.cloud, self.code_prefix, self.catalog, self.poll_interval = service, code_prefix, catalog, 0.05

    def place(self, spec: Any) -> Placement:
        return Placement("mem.gpu", "local", spec.resources.nodes, spec.resources.spot)

    def code_uri_prefix(self) -> str:
        return self.code_prefix

    def build_request(self, spec: Any, placement: Placement, limits: Limits, *, code_uri: str, name: str,
                      tags: dict[str, str]) -> dict[str, Any]:
        return {"name": name, "run": spec.run, "code": code_uri, "machine": placement.instance_type,
                "nodes": placement.nodes, "spot": placement.spot, "timeout": limits.run_cap(),
                "spot_wait": limits.spot_wait() if placement.spot else None, "labels": dict(tags)}

    def restart_request(self, base: dict[str, Any], number: int, limits: Limits, used: float) -> dict[str, Any]:
        request, attempt = copy.deepcopy(base), limits.for_attempt(used)
        request["name"] = restart_name(base["name"], number)
        request["timeout"] = attempt.run_cap(used)
        request["labels"].update({LIMITS_TAG: attempt.to_tag(), ATTEMPT_TAG: str(number + 1),
                                  RESTART_OF_TAG: base["name"]})
        return request

    def create(self, request: dict[str, Any]) -> str:
        with self.cloud.lock:
            if request["name"] in self.cloud.jobs:
                raise ConflictError(f"job {request['name']} exists")
            self.cloud.jobs[request["name"]] = MemoryJob(copy.deepcopy(request))
        return request["name"]

    def _job(self, name: str) -> MemoryJob:
        if name not in self.cloud.jobs:
            raise NotFound(f"no Memory job {name!r}")
        return self.cloud.jobs[name]

    def describe(self, native_id: str) -> Snapshot:
        job = self._job(native_id)
        limit = {"TIMED_OUT": "runtime", "PREEMPTED": "spot_wait"}.get(job.status)
        return Snapshot(native_id, job.status, message=job.message, created_at=job.created,
                        started_at=job.started, ended_at=job.ended, tags=dict(job.request["labels"]),
                        provisioning=job.status in ("QUEUED", "PROVISIONING"), stopped=job.status == "STOPPED",
                        limit_stop=limit, runtime_cap=job.request["timeout"], used_seconds=job.used,  # type: ignore[arg-type]
                        interruptions=job.preemptions, name=job.request["labels"].get("cloudbridge:name"),
                        extra={"machine": job.request["machine"]})

    def stop(self, native_id: str) -> None:
        job = self._job(native_id)
        if job.status not in ("SUCCEEDED", "FAILED", "TIMED_OUT", "PREEMPTED"):
            job.status, job.ended = "STOPPED", time.time()

    def add_tags(self, snapshot: Snapshot, tags: dict[str, str]) -> None:
        self._job(snapshot.native_id).request["labels"].update(tags)

    def find_restarts(self, original: str) -> list[str]:
        found = {restart_number(original, name): name for name in list(self.cloud.jobs)}
        return [found[n] for n in sorted(n for n in found if n is not None)]

    def request_of(self, first: Snapshot, tags: dict[str, str]) -> dict[str, Any]:
        return copy.deepcopy(self._job(first.native_id).request)

    def list_jobs(self) -> list[Snapshot]:
        return [self.describe(n) for n, j in list(self.cloud.jobs.items()) if RESTART_OF_TAG not in j.request["labels"]]

    def read_logs(self, native_id: str, *, follow: bool = False, is_done: Callable[[], bool] | None = None,
                  poll_interval: float = 5.0, deadline: float | None = None) -> Iterator[str]:
        sent = 0
        while True:
            lines = self._job(native_id).logs
            yield from lines[sent:]
            sent = len(lines)
            if not follow or (is_done is not None and is_done()):
                yield from self._job(native_id).logs[sent:]
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise StageTimeout(f"log follow of Memory job {native_id} timed out", stage="log follow")
            time.sleep(poll_interval)
