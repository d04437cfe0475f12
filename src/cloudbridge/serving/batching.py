"""Running one model safely for many server threads.

:class:`Batcher` owns one worker thread that is the only caller of the model. Request threads
queue their items and wait. Whenever the worker is free it takes every queued request (whole
requests, up to ``max_items`` items in all; a larger single request goes alone) and makes one
model call for all of them. Under no load a request runs at once (nothing waits for a batch to
fill); under load, requests that arrive while the model is busy share the next forward pass.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Batcher", "BatcherClosed"]


class BatcherClosed(RuntimeError):
    """The batcher was closed while a request waited."""


class _Job:
    __slots__ = ("done", "error", "items", "result")

    def __init__(self, items: Sequence[Any]) -> None:
        self.items = items
        self.done = threading.Event()
        self.result: list[Any] | None = None
        self.error: BaseException | None = None


class Batcher:
    """Merge concurrent calls of ``fn(items) -> results`` (``len(results) == len(items)``)."""

    def __init__(self, fn: Callable[[list[Any]], list[Any]], max_items: int = 32) -> None:
        self.fn = fn
        self.max_items = max(1, max_items)
        self._queue: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        #: Model calls made, items passed in all, and the largest call (in items) so far.
        self.calls = 0
        self.items = 0
        self.largest = 0
        self._thread = threading.Thread(target=self._work, name="cloudbridge-batcher", daemon=True)
        self._thread.start()

    def submit(self, items: Sequence[Any]) -> list[Any]:
        """Run ``fn`` on ``items`` (possibly together with other requests); re-raise its error."""
        job = _Job(list(items))
        with self._cond:
            if self._closed:
                raise BatcherClosed("the model is shutting down")
            self._queue.append(job)
            self._cond.notify()
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def close(self) -> None:
        """Stop the worker; queued requests fail with :class:`BatcherClosed`."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=10)

    def _take(self) -> list[_Job] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if self._closed:
                for job in self._queue:
                    job.error = BatcherClosed("the model is shutting down")
                    job.done.set()
                self._queue.clear()
                return None
            jobs = [self._queue.popleft()]
            total = len(jobs[0].items)
            while self._queue and total + len(self._queue[0].items) <= self.max_items:
                job = self._queue.popleft()
                total += len(job.items)
                jobs.append(job)
            return jobs

    def _work(self) -> None:
        while True:
            jobs = self._take()
            if jobs is None:
                return
            items = [item for job in jobs for item in job.items]
            self.calls += 1
            self.items += len(items)
            self.largest = max(self.largest, len(items))
            try:
                results = self.fn(items)
                if len(results) != len(items):
                    raise RuntimeError(f"the model returned {len(results)} results for {len(items)} inputs")
            except BaseException as exc:  # noqa: BLE001 - hand every error to the waiting requests
                for job in jobs:
                    job.error = exc
                    job.done.set()
                continue
            offset = 0
            for job in jobs:
                job.result = results[offset : offset + len(job.items)]
                offset += len(job.items)
                job.done.set()
