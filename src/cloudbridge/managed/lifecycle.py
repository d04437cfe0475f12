"""What a managed service does not enforce by itself, enforced whenever a job is read.

* **start_timeout** -- a job still provisioning (:attr:`Snapshot.provisioning`) longer than
  ``resources.start_timeout`` after it was created is tagged ``STOPPED_BY_TAG=start_timeout`` and
  stopped; it reads ``FAILED``, ``timed out: provisioning exceeded start_timeout 15m`` from then on,
  in every process.
* **max_restarts** -- a spot job with ``checkpoints`` that the service ended for lack of spot
  capacity is resubmitted through :meth:`ManagedAdapter.restart_request`, up to ``max_restarts``
  times, within what is left of ``max_runtime`` and the budget. Restarts are found again by
  :meth:`ManagedAdapter.find_restarts`, so any process sees the same attempts.
* the budget and ``max_runtime`` are enforced by the service's own run-time cap (see
  :mod:`cloudbridge.managed.limits`); a job stopped by it reads ``budget exceeded`` or
  ``timed out: running stage exceeded max_runtime 4h``.

Everything needed is in the job's tags, so no local state is required.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from cloudbridge.errors import CloudbridgeError, ConflictError
from cloudbridge.managed.adapter import ManagedAdapter, Snapshot
from cloudbridge.managed.limits import LIMITS_TAG, MIN_BUDGET_SECONDS, NAME_TAG, STOPPED_BY_TAG, Limits
from cloudbridge.managed.reading import attempt_record, job_from_snapshot
from cloudbridge.reasons import SPOT_REASONS
from cloudbridge.records import Job, JobState

__all__ = ["Tracker"]


class Tracker:
    """Reads a job across its attempts and enforces its limits; caches what cannot change."""

    def __init__(self, adapter: ManagedAdapter) -> None:
        self.adapter = adapter
        #: Tags read per native id, and jobs this process stopped itself (native id -> why).
        self._tag_cache: dict[str, dict[str, str]] = {}
        self._stopped: dict[str, str] = {}
        #: Requests this process created, by native id of the first attempt (restarts reuse them).
        self.requests: dict[str, Any] = {}
        self.spec_names: dict[str, str] = {}

    # ---- tags ------------------------------------------------------------------------------------
    def tags(self, snap: Snapshot, fresh: bool = False) -> dict[str, str]:
        """The job's tags (read once per job unless ``fresh``); ``{}`` when they cannot be read."""
        if snap.native_id in self._tag_cache and not fresh:
            return self._tag_cache[snap.native_id]
        try:
            tags = self.adapter.read_tags(snap)
        except CloudbridgeError:
            return {}  # tags add names and limits; a job without them still reads correctly
        if tags:
            self._tag_cache[snap.native_id] = tags
        return tags

    def _stopped_by(self, snap: Snapshot) -> str | None:
        """Why cloudbridge stopped this job (``start_timeout``), or ``None`` (a user's cancel, or running)."""
        if snap.native_id in self._stopped:
            return self._stopped[snap.native_id] or None
        if not snap.stopped:
            return None
        found = self.tags(snap, fresh=True).get(STOPPED_BY_TAG, "")
        self._stopped[snap.native_id] = found
        return found or None

    # ---- attempts --------------------------------------------------------------------------------
    def track(self, original: str) -> Job:
        """The job whose first provider job is ``original``: every attempt read, limits enforced."""
        first = self.adapter.describe(original)
        tags = self.tags(first)
        limits = Limits.from_tag(tags.get(LIMITS_TAG), max_runtime=first.runtime_cap)
        chain = [first]
        if limits.max_restarts:
            chain += [self.adapter.describe(name) for name in self.adapter.find_restarts(original)]
        chain[-1] = self._enforce_start_timeout(chain[-1], limits)
        jobs = self._jobs(chain, limits)
        while self._may_restart(chain, jobs, limits):
            chain.append(self._restart(chain, tags, limits))
            chain[-1] = self._enforce_start_timeout(chain[-1], limits)
            jobs = self._jobs(chain, limits)
        return self._merge(original, tags, chain, jobs, limits)

    def _jobs(self, chain: list[Snapshot], limits: Limits) -> list[Job]:
        jobs, used = [], 0.0
        for snap in chain:
            attempt_limits = limits.for_attempt(used) if limits.tagged else limits
            jobs.append(job_from_snapshot(self.adapter, snap, attempt_limits, self._stopped_by(snap)))
            used += snap.used_seconds
        return jobs

    def _enforce_start_timeout(self, snap: Snapshot, limits: Limits) -> Snapshot:
        """Stop a job still provisioning past ``start_timeout``; returns its fresh snapshot."""
        timeout = limits.start_timeout
        if not timeout or not snap.provisioning or snap.created_at is None:
            return snap
        if time.time() - snap.created_at < timeout:
            return snap
        self.adapter.add_tags(snap, {STOPPED_BY_TAG: "start_timeout"})
        self._stopped[snap.native_id] = "start_timeout"
        self.adapter.stop(snap.native_id)
        return self.adapter.describe(snap.native_id)

    def _may_restart(self, chain: list[Snapshot], jobs: list[Job], limits: Limits) -> bool:
        """True when the newest attempt ended for lack of spot capacity and a restart is allowed.

        When one is not allowed, the newest attempt's detail says why.
        """
        newest = jobs[-1]
        if not limits.max_restarts or newest.state is not JobState.FAILED or newest.reason not in SPOT_REASONS:
            return False
        restarts = len(chain) - 1
        left, binding = limits.runtime_left(sum(s.used_seconds for s in chain))
        if restarts >= limits.max_restarts:
            why = f"no restart left (max_restarts {limits.max_restarts} used)"
        elif left < MIN_BUDGET_SECONDS:
            why = f"not restarted: only {left}s of {'the budget' if binding == 'budget' else 'max_runtime'} left"
        else:
            return True
        newest.detail = f"{newest.detail}; {why}" if newest.detail else why
        return False

    def _restart(self, chain: list[Snapshot], tags: dict[str, str], limits: Limits) -> Snapshot:
        """Create the next attempt (resuming from the same checkpoints); returns its snapshot."""
        original = chain[0].native_id
        base = self.requests.get(original)
        if base is None:
            base = self.adapter.request_of(chain[0], tags)
        request = self.adapter.restart_request(base, len(chain), limits, sum(s.used_seconds for s in chain))
        try:
            name = self.adapter.create(request)
        except ConflictError:
            # another process restarted it a moment ago: same name, same request
            name = self.adapter.find_restarts(original)[len(chain) - 1]
        return self.adapter.describe(name)

    def _merge(self, original: str, tags: dict[str, str], chain: list[Snapshot], jobs: list[Job],
               limits: Limits) -> Job:
        """One cloudbridge job: the newest attempt's state, the first one's id, name and times."""
        first, newest = jobs[0], jobs[-1]
        job = replace(newest, id=f"{self.adapter.provider}-{original}", metrics=dict(newest.metrics),
                      extra=dict(newest.extra))
        job.name = tags.get(NAME_TAG) or self.spec_names.get(original) or first.name
        job.created_at = first.created_at
        job.started_at = next((j.started_at for j in jobs if j.started_at is not None), None)
        job.attempts = [attempt_record(snap, n, j) for n, (snap, j) in enumerate(zip(chain, jobs, strict=True), 1)]
        if len(chain) > 1:
            job.extra["native_ids"] = [s.native_id for s in chain]
            job.extra["restarts"] = len(chain) - 1
        if limits.tagged:
            job.extra["limits"] = limits.to_tag()
            if limits.budget_cap is not None:
                job.extra["budget_cap_seconds"] = limits.budget_cap
        return job
