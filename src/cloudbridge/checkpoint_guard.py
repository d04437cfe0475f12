"""One checkpoint location, one running job: refuse a submit whose ``checkpoints:`` is in use.

Two jobs writing the same checkpoint location corrupt each other's resume (the second "resumes"
from the first one's step). Before a job is submitted -- and in ``run --dry-run`` -- the job store
is searched for an unfinished job of the same provider with the same location (local: the same
absolute path; clouds: the same URI, trailing ``/`` ignored). A cloud job the store still shows as
running is asked for its current state first, so a job that ended unseen does not block. The
refusal names the job and how to proceed; ``force`` (``cloudbridge run --force``) skips the check.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from cloudbridge.errors import CloudbridgeError, ConflictError

if TYPE_CHECKING:
    from cloudbridge.records import Job
    from cloudbridge.specs import JobSpec

__all__ = ["check_checkpoints_free", "checkpoint_key"]


def checkpoint_key(location: str | None, base_dir: str | None = None) -> str | None:
    """``location`` as compared between jobs: a URI without its trailing ``/``, or an absolute real path."""
    if not location:
        return None
    from cloudbridge.uri import is_remote, parse_uri

    if is_remote(location):
        return location.rstrip("/")
    path = parse_uri(location, base_dir=base_dir).path
    return os.path.realpath(path)


def _still_running(job: Job) -> bool:
    if job.provider == "local":  # the local backend judges its supervisors when listing
        return True
    try:
        from cloudbridge.sdk import get_job

        return not get_job(job.id).state.is_terminal
    except CloudbridgeError:
        return True  # cannot tell: treat as running, the refusal says how to override


def check_checkpoints_free(spec: JobSpec, *, force: bool = False) -> None:
    """:class:`ConflictError` naming the unfinished job of ``spec.provider`` that uses ``spec.checkpoints``."""
    if force:
        return
    key = checkpoint_key(spec.checkpoints, str(spec.base_dir))
    if key is None:
        return
    from cloudbridge.jobstore.store import JobStore
    from cloudbridge.records import JobState

    store = JobStore.default()
    if spec.provider == "local":
        try:
            from cloudbridge.backends import get_provider

            get_provider("local").compute.list()  # a crashed supervisor's job is marked FAILED first
        except CloudbridgeError:
            pass
    active = store.list(spec.provider, states=[JobState.PENDING, JobState.STARTING, JobState.RUNNING])
    for job in active:
        try:
            stored = store.spec(job.id) or {}
        except CloudbridgeError:
            continue
        if checkpoint_key(stored.get("checkpoints"), stored.get("workdir")) != key:
            continue
        if not _still_running(job):
            continue
        raise ConflictError(
            f"checkpoints {spec.checkpoints} is in use by {job.state.value.lower()} job {job.id} ({job.name}); "
            "a second job there would resume from the other's steps",
            hint=f"give this job its own checkpoints location, stop the other (cloudbridge cancel {job.id}), "
            "or pass --force (cb.run(..., force=True)) if that is really intended",
        )
