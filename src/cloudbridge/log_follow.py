"""A time limit on following a job's logs, for providers whose ``Compute.logs`` has none of its own.

``cb.logs(id, follow=True, timeout=60)`` and ``cloudbridge logs -f --timeout 60`` use the
provider's own bound when its ``logs`` takes ``timeout`` (the AWS plugin does); otherwise
:func:`follow_with_timeout` reads the provider's follow in a daemon thread and stops waiting at the
deadline, with :class:`~cloudbridge.errors.StageTimeout` (stage ``log follow``). Following is
only watching: the job itself keeps running.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from cloudbridge.errors import StageTimeout

__all__ = ["follow_timeout_error", "follow_with_timeout"]


def follow_timeout_error(compute: Any, job_id: str, timeout: float) -> StageTimeout:
    """The error that ends a follow after ``timeout`` seconds, naming the job's current state."""
    try:
        state = compute.get(job_id).state
    except Exception:  # noqa: BLE001 - the timeout is the news; the state is a courtesy
        state = "running"
    return StageTimeout(
        f"log follow timed out after {timeout:g}s: job {job_id} is still {state} and keeps running "
        f"(follow again: cloudbridge logs -f {job_id}; stop it: cloudbridge cancel {job_id})",
        stage="log follow",
    )


def follow_with_timeout(compute: Any, job_id: str, timeout: float, **options: Any) -> Iterator[str]:
    """Lines of ``compute.logs(job_id, follow=True, **options)`` until the job ends or ``timeout`` seconds pass."""
    lines: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()

    def pump() -> None:
        stream = compute.logs(job_id, follow=True, **options)
        try:
            for line in stream:
                if stop.is_set():
                    return
                lines.put(("line", line))
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, who raises it
            lines.put(("error", exc))
            return
        finally:
            close = getattr(stream, "close", None)
            if close is not None and stop.is_set():
                close()
        lines.put(("done", None))

    threading.Thread(target=pump, name=f"cb-follow-{job_id}", daemon=True).start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            try:
                kind, value = lines.get(timeout=max(0.0, left))
            except queue.Empty:
                raise follow_timeout_error(compute, job_id, timeout) from None
            if kind == "line":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
