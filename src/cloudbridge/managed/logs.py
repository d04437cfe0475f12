"""Following a managed job's logs across its attempts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from cloudbridge.errors import StageTimeout

__all__ = ["follow_logs"]


def follow_logs(compute: Any, job_id: str, *, follow: bool, timeout: float | None) -> Iterator[str]:
    """The job's log lines, attempt after attempt; ``follow`` keeps reading until the job ends.

    ``compute`` is a :class:`~cloudbridge.managed.compute.ManagedCompute`. A restart starts with a
    ``[cloudbridge] attempt N: ...`` line. Past ``timeout`` seconds a follow raises
    :class:`StageTimeout` (stage ``log follow``) naming the job's state; the job keeps running.
    """
    adapter = compute.adapter
    deadline = time.monotonic() + timeout if (follow and timeout is not None) else None
    done: list[str] = []
    while True:
        job = compute.get(job_id)
        names = [a["native_id"] for a in job.attempts] or [job.native_id]
        if follow and all(name in done for name in names):
            if job.state.is_terminal:
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise StageTimeout(f"log follow timed out after {timeout:g}s: job {job_id} is still {job.state} "
                                   "and keeps running", stage="log follow")
            time.sleep(compute.poll_interval)
            continue
        for number, name in enumerate(names, 1):
            if name in done:
                continue
            if number > 1:
                previous = job.attempts[number - 2].get("reason") or "the previous attempt ended"
                yield f"[cloudbridge] attempt {number}: {adapter.service} job {name} (resubmitted after {previous})"
            live = follow and number == len(names) and not job.state.is_terminal

            def is_done(name: str = name) -> bool:
                now = compute.get(job_id)
                return now.state.is_terminal or now.native_id != name

            try:
                yield from adapter.read_logs(name, follow=live, is_done=is_done,
                                             poll_interval=compute.poll_interval, deadline=deadline)
            except StageTimeout:
                state = compute.get(job_id).state
                raise StageTimeout(
                    f"log follow timed out after {timeout:g}s: job {job_id} is still {state} and keeps running "
                    f"(follow again: cloudbridge logs -f {job_id}; stop it: cloudbridge cancel {job_id})",
                    stage="log follow",
                ) from None
            done.append(name)
        if not follow:
            return
