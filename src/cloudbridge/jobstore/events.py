"""Job events: the builtin observer that keeps each job's history, and :func:`emit`.

Whoever changes a job's stored state calls :func:`emit` once, after the change is committed.
:func:`emit` builds a :class:`~cloudbridge.hookspecs.JobEvent` and calls every
``cloudbridge_job_event`` implementation in turn -- this module's own (which appends the event to
the job's record in the :class:`~cloudbridge.jobstore.store.JobStore`) and any plugin's (notifications,
cost logs). An observer that raises is logged and skipped: observers never break a job.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from cloudbridge.hookspecs import JobEvent, hookimpl

if TYPE_CHECKING:  # records are imported when an event is emitted: loading this builtin plugin stays cheap
    from cloudbridge.records import Job, JobState

__all__ = ["cloudbridge_job_event", "emit", "observe"]

log = logging.getLogger(__name__)


@hookimpl
def cloudbridge_job_event(event: JobEvent) -> None:
    """Append ``event`` to its job's history in the job store."""
    from cloudbridge.jobstore.store import JobStore

    JobStore.default().add_event(event)


def emit(job: Job, previous: JobState | str | None, **extra: Any) -> JobEvent:
    """Fire ``cloudbridge_job_event`` for ``job`` having moved from ``previous`` to ``job.state``.

    Every observer is called even when an earlier one raises; failures are logged at WARNING.
    Returns the event that was sent.
    """
    from cloudbridge.plugins import get_plugin_manager
    from cloudbridge.records import JobState

    event = JobEvent(
        job_id=job.id,
        provider=job.provider,
        name=job.name,
        state=JobState(job.state).value,
        previous=JobState(previous).value if previous is not None else None,
        time=time.time(),
        reason=job.reason,
        detail=job.detail,
        extra=extra,
    )
    try:
        impls = get_plugin_manager().hook.cloudbridge_job_event.get_hookimpls()
    except Exception:
        log.warning("cannot load plugins to deliver the event for job %s", job.id, exc_info=True)
        return event
    for impl in reversed(impls):  # pluggy's call order: last registered first; keep ours first
        try:
            impl.function(event=event)
        except Exception:
            log.warning("job event observer %r failed for job %s", impl.plugin_name, job.id, exc_info=True)
    return event


def observe(job: Job, spec: Any = None) -> list[JobEvent]:
    """Record what a provider reported about ``job``; fire one event per change it brings.

    A new attempt (a cloud job resubmitted after spot interruption) fires its own event first,
    ``extra["event"] == "restarted"``; then the state change, if any. The comparison with the stored
    record happens inside one store transaction (:meth:`~cloudbridge.jobstore.store.JobStore.record_seen`),
    so when several processes read the same job, each change fires exactly once. ``spec`` (a
    :class:`~cloudbridge.specs.JobSpec`, at submit) is stored with a new record.
    """
    from dataclasses import replace

    from cloudbridge.jobstore.store import JobStore
    from cloudbridge.records import JobState

    data = spec.model_dump(mode="json") if spec is not None else None
    previous, before = JobStore.default().record_seen(job, data)
    events: list[JobEvent] = []
    if before is not None and spec is None:
        stored_state, stored_attempts = before
        known = max((int(a.get("attempt") or 0) for a in stored_attempts), default=1)
        for index, attempt in enumerate(job.attempts):
            number = int(attempt.get("attempt") or index + 1)
            if number <= known or index == 0:
                continue
            why = job.attempts[index - 1].get("reason") or "the previous attempt ended"
            native = attempt.get("native_id") or "?"
            event_job = replace(job, state=JobState.STARTING, detail=None,
                                reason=f"restarted after {why}: attempt {number} ({native})")
            events.append(emit(event_job, stored_state, event="restarted", attempt=number, native_id=native))
    if previous is not False:
        events.append(emit(job, previous))
    return events
