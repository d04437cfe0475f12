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
from typing import Any

from cloudbridge.hookspecs import JobEvent, hookimpl
from cloudbridge.records import Job, JobState

__all__ = ["cloudbridge_job_event", "emit"]

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
