"""One :class:`~cloudbridge.managed.adapter.Snapshot` as a cloudbridge :class:`~cloudbridge.records.Job`.

Pure: the state comes from the adapter's table; a failed job's ``reason`` is named here, from the
limits the job carries (budget cap, ``max_runtime``, ``start_timeout``, spot wait) or, failing
that, from the service's message through the adapter's rules.
"""

from __future__ import annotations

from typing import Any

from cloudbridge.managed.adapter import ManagedAdapter, Snapshot, lookup_state
from cloudbridge.managed.limits import DEFAULT_MAX_RUNTIME, Limits
from cloudbridge.reasons import (
    BUDGET_EXCEEDED,
    FAILED,
    NO_SPOT_CAPACITY,
    SPOT_RECLAIMED,
    runtime_timeout_reason,
    start_timeout_reason,
)
from cloudbridge.records import Job, JobState

__all__ = ["attempt_record", "ended_by_limit", "job_from_snapshot", "state_of"]


def state_of(adapter: ManagedAdapter, snap: Snapshot) -> JobState:
    """The :class:`JobState` of ``snap`` through the adapter's state table."""
    return lookup_state(adapter.states, snap.status, snap.stage)


def ended_by_limit(adapter: ManagedAdapter, snap: Snapshot, limits: Limits,
                   stopped_by: str | None) -> tuple[str, str] | None:
    """``(reason, detail)`` when ``start_timeout``, the spot wait, the budget or ``max_runtime`` ended the job."""
    if stopped_by == "start_timeout" and limits.start_timeout:
        return start_timeout_reason(limits.start_timeout), adapter.explain(snap, "start_timeout", limits)
    if snap.limit_stop == "spot_wait":
        cause = "spot_reclaimed" if snap.interruptions else "no_spot_capacity"
        reason = SPOT_RECLAIMED if snap.interruptions else NO_SPOT_CAPACITY
        return reason, adapter.explain(snap, cause, limits)
    if snap.limit_stop == "runtime":
        if limits.binding == "budget":
            return BUDGET_EXCEEDED, adapter.explain(snap, "budget", limits)
        cap = snap.runtime_cap
        return (runtime_timeout_reason(limits.max_runtime if limits.tagged or not cap else cap),
                adapter.explain(snap, "max_runtime", limits))
    return None


def job_from_snapshot(adapter: ManagedAdapter, snap: Snapshot, limits: Limits | None = None,
                      stopped_by: str | None = None) -> Job:
    """A :class:`Job` (one attempt) from ``snap``.

    ``limits`` (parsed from the job's ``LIMITS_TAG``) name the limit that ended a stopped job;
    ``stopped_by`` is its ``STOPPED_BY_TAG`` (a job cloudbridge stopped after ``start_timeout`` is
    ``FAILED``, not ``CANCELLED``).
    """
    if limits is None:
        limits = Limits(max_runtime=snap.runtime_cap or DEFAULT_MAX_RUNTIME)
    state = state_of(adapter, snap)
    reason = detail = None
    ended = None
    if stopped_by == "start_timeout" or state is JobState.FAILED:
        ended = ended_by_limit(adapter, snap, limits, stopped_by)
    if ended is not None:
        state, (reason, detail) = JobState.FAILED, ended
    elif state is JobState.FAILED:
        reason = adapter.failure_reason(snap) or FAILED
        detail = adapter.explain(snap, "failed", limits)
    job = Job(
        id=f"{adapter.provider}-{snap.native_id}",
        provider=adapter.provider,
        name=snap.name or snap.native_id,
        state=state,
        native_id=snap.native_id,
        outputs_uri=snap.outputs_uri,
        metrics=dict(snap.metrics),
        reason=reason,
        detail=detail,
        created_at=snap.created_at,
        started_at=snap.started_at,
        ended_at=snap.ended_at if state.is_terminal else None,
        extra=dict(snap.extra),
    )
    if state.is_terminal and job.ended_at is None:
        job.ended_at = snap.modified_at
    job.attempts = [attempt_record(snap, 1, job)]
    return job


def attempt_record(snap: Snapshot, number: int, job: Job) -> dict[str, Any]:
    """One entry of ``Job.attempts``: one provider job (the service's own spot restarts counted inside)."""
    record: dict[str, Any] = {
        "attempt": number,
        "native_id": snap.native_id,
        "state": job.state.value,
        "started_at": job.started_at,
        "ended_at": job.ended_at,
        "reason": job.reason,
    }
    if snap.interruptions:
        record["interruptions"] = snap.interruptions
    return record
