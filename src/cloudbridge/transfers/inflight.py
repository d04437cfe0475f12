"""Many small transfers in flight at once, without a thread each: the sync engine's async lane.

A sync of many small objects against a real store is made of round trips. A thread per transfer
caps the requests in flight at the thread count, and every reply then costs a thread switch under
the GIL. A storage whose client is asynchronous (S3 through the AWS CRT) can instead start a
request and be told when it ended; it implements :class:`AsyncTransfers`, and :func:`run_inflight`
keeps up to ``limit`` requests in flight from one thread:

* ``start_upload`` / ``start_download`` start one request and return a handle with ``cancel()``,
  or ``None`` to decline (a large object, a bucket the fast client cannot address): the object then
  goes to the thread pool like any other. They call ``done(finish)`` exactly once, from any thread;
* ``finish()`` runs on the engine's thread: it checks the reply (checksums, sizes) and returns, or
  raises a :mod:`cloudbridge.errors` exception. A :class:`~cloudbridge.errors.TransientError` is
  retried with the sync's backoff; anything else is recorded as that object's failure;
* downloads land in a private ``.cb-partial-*`` file beside the target, which becomes the target
  (with the source's mtime) only after ``finish()`` passed; a failed one is deleted.

On an interrupt (Ctrl-C) every request in flight is cancelled and its partial file removed.
"""

from __future__ import annotations

import heapq
import itertools
import os
import queue
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from typing import Any, Protocol

from cloudbridge.errors import TransientError, UnsafeKey
from cloudbridge.interfaces import Storage, as_uri
from cloudbridge.records import ObjectInfo
from cloudbridge.transfers.digests import new_partial
from cloudbridge.transfers.plan import CopyItem
from cloudbridge.transfers.retry import RetryPolicy
from cloudbridge.uri import StorageURI, check_key

__all__ = ["AsyncTransfers", "DownloadItem", "InflightItem", "async_lane", "run_inflight"]

#: ``done(finish)``: the request ended; ``finish()`` checks it and returns, or raises.
Done = Callable[[Callable[[], Any]], None]


class Cancellable(Protocol):
    """A request in flight."""

    def cancel(self) -> None:
        """Stop it; ``done`` is still called (with a ``finish`` that raises)."""


class AsyncTransfers(Protocol):
    """What a :class:`~cloudbridge.interfaces.Storage` implements to join the async lane."""

    #: Requests in flight by default (the CLI's ``--workers`` overrides it).
    inflight_default: int

    def start_upload(self, local_path: str, uri: StorageURI, done: Done) -> Cancellable | None:
        """Start uploading the file ``local_path`` to ``uri``; ``finish()`` returns its ObjectInfo."""

    def start_download(self, info: ObjectInfo, local_path: str, done: Done) -> Cancellable | None:
        """Start downloading the object ``info`` into the existing file ``local_path``."""


class InflightItem:
    """One object of the async lane: what to start, and what to do when it passed."""

    def __init__(self, key: str, size: int, start: Callable[[Done], Cancellable | None]) -> None:
        self.key = key
        self.size = size
        self._start = start
        self.failures = 0

    def start(self, done: Done) -> Cancellable | None:
        """Start the request (``None``: declined)."""
        return self._start(done)

    def complete(self, finish: Callable[[], Any]) -> None:
        """Check the finished request (raises when it failed)."""
        finish()

    def cleanup(self) -> None:
        """Remove what a failed or cancelled attempt left."""


class DownloadItem(InflightItem):
    """A download into a private partial file, renamed onto ``target`` once verified."""

    def __init__(self, key: str, info: ObjectInfo, target: str, storage: AsyncTransfers) -> None:
        super().__init__(key, info.size, self._begin)
        self.info = info
        self.target = target
        self.storage = storage
        self.partial: str | None = None

    def _begin(self, done: Done) -> Cancellable | None:
        self.partial = new_partial(self.target)
        try:
            handle = self.storage.start_download(self.info, self.partial, done)
        except BaseException:
            self.cleanup()
            raise
        if handle is None:
            self.cleanup()
        return handle

    def complete(self, finish: Callable[[], Any]) -> None:
        """Verify, set the source's mtime, then make the file visible under its name."""
        finish()
        assert self.partial is not None
        if self.info.mtime is not None:
            os.utime(self.partial, (self.info.mtime, self.info.mtime))
        os.replace(self.partial, self.target)
        self.partial = None

    def cleanup(self) -> None:
        """Delete the partial file, if any."""
        if self.partial is not None:
            with suppress(FileNotFoundError):
                os.unlink(self.partial)
            self.partial = None


def run_inflight(
    items: list[InflightItem],
    *,
    limit: int,
    policy: RetryPolicy,
    succeeded: Callable[[InflightItem], None],
    failed: Callable[[InflightItem, BaseException], None],
    declined: Callable[[InflightItem], None],
    on_retry: Callable[[int, BaseException], None],
) -> None:
    """Run ``items`` with at most ``limit`` requests in flight, retrying transient failures.

    Calls ``succeeded``, ``failed`` or ``declined`` once per item, on this thread.
    """
    ready: queue.SimpleQueue[tuple[InflightItem, Callable[[], Any]]] = queue.SimpleQueue()
    pending = deque(items)
    inflight: dict[int, tuple[InflightItem, Cancellable]] = {}
    waiting: list[tuple[float, int, InflightItem]] = []  # retries: (due, tie-breaker, item)
    order = itertools.count()

    def settle(item: InflightItem, finish: Callable[[], Any]) -> None:
        try:
            item.complete(finish)
        except TransientError as exc:
            item.cleanup()
            item.failures += 1
            if item.failures >= policy.attempts:
                failed(item, exc)
            else:
                on_retry(item.failures, exc)
                heapq.heappush(waiting, (time.monotonic() + policy.delay(item.failures), next(order), item))
        except Exception as exc:  # noqa: BLE001 - like the thread pool: one object's failure, the rest go on
            item.cleanup()
            failed(item, exc)
        except BaseException:  # Ctrl-C while checking it: nothing half-done stays behind
            item.cleanup()
            raise
        else:
            succeeded(item)

    try:
        while pending or inflight or waiting:
            now = time.monotonic()
            while waiting and waiting[0][0] <= now:
                pending.appendleft(heapq.heappop(waiting)[2])
            while pending and len(inflight) < limit:
                item = pending.popleft()
                try:
                    handle = item.start(lambda finish, item=item: ready.put((item, finish)))
                except Exception as exc:  # noqa: BLE001 - the local file vanished, a bad request...

                    def fail_now(exc: Exception = exc) -> None:
                        raise exc

                    settle(item, fail_now)
                    continue
                if handle is None:
                    declined(item)
                else:
                    inflight[id(item)] = (item, handle)
            if not inflight:
                if waiting:
                    time.sleep(max(0.0, waiting[0][0] - time.monotonic()))
                continue
            timeout = max(0.0, waiting[0][0] - time.monotonic()) if waiting else None
            try:
                item, finish = ready.get(timeout=timeout)
            except queue.Empty:
                continue
            inflight.pop(id(item), None)
            settle(item, finish)
    except BaseException:
        _cancel_all(inflight, ready)
        raise


def _cancel_all(inflight: dict[int, tuple[InflightItem, Cancellable]], ready: queue.SimpleQueue[Any]) -> None:
    """Cancel every request in flight, wait (a few seconds at most) for them to end, clean up."""
    for _item, handle in list(inflight.values()):
        with suppress(Exception):
            handle.cancel()
    deadline = time.monotonic() + 5.0
    while inflight and time.monotonic() < deadline:
        try:
            item, _ = ready.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        inflight.pop(id(item), None)
        item.cleanup()
    for item, _ in inflight.values():
        item.cleanup()


def async_lane(
    src_storage: Storage, dst_storage: Storage, dst_uri: StorageURI, to_copy: list[CopyItem]
) -> tuple[list[InflightItem], list[CopyItem]]:
    """Split the copies into the async lane (uploads from a local folder to, or downloads into one
    from, a storage with ``start_upload``/``start_download``) and the rest, which the thread pool
    copies. An unsafe key stays with the rest, whose worker records why it was refused.
    ``CLOUDBRIDGE_SYNC_ASYNC=0`` turns the lane off."""
    if not to_copy or os.environ.get("CLOUDBRIDGE_SYNC_ASYNC", "1").strip().lower() in ("0", "false", "no", "off"):
        return [], to_copy
    download = dst_uri.is_local and hasattr(src_storage, "start_download")
    upload = not dst_uri.is_local and hasattr(dst_storage, "start_upload")
    if not (download or upload):
        return [], to_copy
    lane: list[InflightItem] = []
    rest: list[CopyItem] = []
    for item in to_copy:
        try:
            target = dst_uri.child("/".join(check_key(item.key)))
        except UnsafeKey:
            rest.append(item)
            continue
        source = as_uri(item.source.uri)
        if download:
            lane.append(DownloadItem(item.key, item.source, target.path, src_storage))  # type: ignore[arg-type]
        elif source.is_local:

            def start(done: Done, path: str = source.path, target: StorageURI = target) -> Cancellable | None:
                return dst_storage.start_upload(path, target, done)  # type: ignore[attr-defined,no-any-return]

            lane.append(InflightItem(item.key, item.source.size, start))
        else:
            rest.append(item)
    return lane, rest
