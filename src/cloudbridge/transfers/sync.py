"""``sync(src, dst)``: make a destination prefix match a source prefix, on any two storages.

1. **Check** the input (:mod:`cloudbridge.transfers.survey`, remote requests in parallel): the
   source exists and is a prefix (a directory), the destination is not inside the source (nor,
   with ``delete=True``, the source inside the destination), the destination is not a file, its
   bucket exists (else :class:`~cloudbridge.errors.NotFound` with the command that creates it).
   Before the first copy that could start a multipart upload to a remote destination, stale
   unfinished uploads under it are aborted (:meth:`~cloudbridge.interfaces.Storage.abort_incomplete`;
   the async lane's single-request uploads run meanwhile); a no-op sync sends no such request.
2. **Plan** (:mod:`cloudbridge.transfers.plan`): to copy / to delete / unchanged, by size and
   mtime/ETag, or by sha256 content checksum with ``checksum=True``.
3. **Copy** in a thread pool, largest objects first, each through the fastest safe path
   (:mod:`cloudbridge.transfers.transfer`), retrying :class:`~cloudbridge.errors.TransientError`
   with exponential backoff. A permanent error is recorded and the rest carries on.
4. **Delete** (``delete=True``) the destination objects absent at the source: only keys listed
   under the destination prefix, and never keys excluded by the filters.

Everything is resumable: no object is ever visible under its final key before it is complete, so
after a crash or ``SIGKILL`` a re-run copies only what is missing or incomplete.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from cloudbridge.errors import CloudbridgeError, UnsafeKey
from cloudbridge.interfaces import Storage, URILike
from cloudbridge.records import ObjectInfo
from cloudbridge.transfers.filters import KeyFilter
from cloudbridge.transfers.inflight import InflightItem, async_lane, run_inflight
from cloudbridge.transfers.plan import CopyItem, build_plan
from cloudbridge.transfers.progress import Reporter, make_progress
from cloudbridge.transfers.resolve import resolve
from cloudbridge.transfers.result import SyncFailure, SyncResult
from cloudbridge.transfers.retry import RetryPolicy, retry_call
from cloudbridge.transfers.survey import abort_stale, survey
from cloudbridge.transfers.transfer import copy_object
from cloudbridge.uri import StorageURI, check_key

__all__ = ["ABORT_INCOMPLETE_AFTER", "DEFAULT_WORKERS", "SyncFailure", "SyncResult", "sync", "transfer_tree"]

#: Parallel transfers by default. I/O bound: against a 30 ms round trip each small object is one
#: request, so 32 in flight keep ~1,000 small objects a second moving (tuned rclone uses 32 too).
DEFAULT_WORKERS = 32
#: Unfinished uploads under a remote destination older than this (seconds) are aborted first.
ABORT_INCOMPLETE_AFTER = 3600.0
#: With a limit at least this long (seconds), the search for stale uploads runs beside the copies.
CONCURRENT_ABORT_AFTER = 60.0


# ---- the engine ---------------------------------------------------------------------------------
def sync(
    src: URILike,
    dst: URILike,
    *,
    delete: bool = False,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    dry_run: bool = False,
    checksum: bool = False,
    progress: bool | Callable[[dict[str, Any]], None] | Reporter | None = None,
    workers: int | None = None,
    profile: str | None = None,
    retry: RetryPolicy | None = None,
    abort_incomplete_after: float | None = ABORT_INCOMPLETE_AFTER,
) -> SyncResult:
    """Make the prefix ``dst`` hold what the prefix ``src`` holds (see the module docstring).

    Returns a :class:`SyncResult`; permanent per-object failures are in ``result.failures`` (call
    ``result.raise_for_errors()`` to turn them into an exception). Bad input raises a
    :class:`~cloudbridge.errors.UserError` before anything is written. Before copying anything to a
    remote destination, its unfinished uploads older than ``abort_incomplete_after`` seconds (left
    by a killed sync) are aborted through :meth:`Storage.abort_incomplete` (``None``: leave them).
    """
    return transfer_tree(
        src,
        dst,
        delete=delete,
        include=include,
        exclude=exclude,
        dry_run=dry_run,
        checksum=checksum,
        progress=progress,
        workers=workers,
        profile=profile,
        retry=retry,
        abort_incomplete_after=abort_incomplete_after,
    )


def transfer_tree(
    src: URILike,
    dst: URILike,
    *,
    delete: bool = False,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    dry_run: bool = False,
    checksum: bool = False,
    progress: bool | Callable[[dict[str, Any]], None] | Reporter | None = None,
    workers: int | None = None,
    profile: str | None = None,
    retry: RetryPolicy | None = None,
    force: bool = False,
    abort_incomplete_after: float | None = ABORT_INCOMPLETE_AFTER,
) -> SyncResult:
    """:func:`sync`, plus ``force=True`` to copy every object (``cp -r``)."""
    started = time.monotonic()
    src_storage, src_uri = resolve(src, profile=profile)
    dst_storage, dst_uri = resolve(dst, profile=profile)
    src_shown, dst_shown = str(src_uri), str(dst_uri)
    policy = retry or RetryPolicy()
    src_objects, dst_objects = survey(src_storage, src_uri, dst_storage, dst_uri, delete=delete, policy=policy)
    inflight = max(1, workers) if workers else None  # an explicit count caps the async lane too
    workers = max(1, workers or DEFAULT_WORKERS)
    plan = build_plan(
        src_storage,
        src_objects,
        dst_storage,
        dst_objects,
        select=KeyFilter(include, exclude),
        delete=delete,
        checksum=checksum,
        same_kind=src_uri.scheme == dst_uri.scheme,
        remote=not (src_uri.is_local and dst_uri.is_local),
        workers=workers,
        force=force,
    )
    result = SyncResult(src_shown, dst_shown, plan, dry_run=dry_run)
    if not dry_run:
        stale: Callable[[], int] | None = None
        if plan.to_copy and not dst_uri.is_local and abort_incomplete_after is not None:
            limit = abort_incomplete_after

            def stale() -> int:
                return abort_stale(dst_storage, dst_uri, limit, policy)

            if abort_incomplete_after < CONCURRENT_ABORT_AFTER:  # could match this sync's own uploads
                result.aborted_uploads, stale = stale(), None
        if dst_uri.is_local and hasattr(dst_storage, "cleanup_partials"):
            dst_storage.cleanup_partials(dst_uri)
        if dst_uri.is_local:
            for info, mtime in plan.to_touch:
                try:
                    os.utime(dst_uri.child("/".join(check_key(info.key))).path, (mtime, mtime))
                except (OSError, UnsafeKey):
                    pass  # only an optimisation for the next size+mtime comparison
        _execute(
            result,
            src_storage,
            dst_storage,
            dst_uri,
            plan.to_copy,
            plan.to_delete,
            workers,
            inflight,
            policy,
            progress,
            stale=stale,
        )
    result.elapsed = time.monotonic() - started
    return result


def _execute(
    result: SyncResult,
    src_storage: Storage,
    dst_storage: Storage,
    dst_uri: StorageURI,
    to_copy: list[CopyItem],
    to_delete: list[ObjectInfo],
    workers: int,
    inflight: int | None,
    policy: RetryPolicy,
    progress: Any,
    stale: Callable[[], int] | None = None,
) -> None:
    """Run the copies, then the deletes, collecting outcomes into ``result``.

    Copies that a storage can run without a thread each go through the async lane
    (:mod:`cloudbridge.transfers.inflight`, up to ``inflight`` requests in flight, else the storage's
    own default); the others through ``workers`` threads, largest first. ``stale`` (the search for
    stale multipart uploads) runs first on the pool, beside the async lane's single-request uploads;
    the pool's copies (which may be multipart uploads, the only kind it could abort) wait for it.
    """
    reporter = make_progress(progress)
    lock = threading.Lock()
    reporter.start(len(to_copy) + len(to_delete), sum(i.source.size for i in to_copy), label="sync")

    def on_retry(_n: int, _exc: BaseException) -> None:
        with lock:
            result.retries += 1

    def fail(key: str, op: str, exc: BaseException) -> None:
        message = exc.message if isinstance(exc, CloudbridgeError) else str(exc) or type(exc).__name__
        with lock:
            result.failures.append(SyncFailure(key, op, message, type(exc).__name__))
        reporter.error(key, message)

    def copy_one(item: CopyItem) -> None:
        if gate is not None:
            gate.exception()  # waits; its error, if any, is reported with the result
        target = dst_uri.child("/".join(check_key(item.key)))  # refuses keys that could escape or merge

        def attempt() -> int:
            moved = 0

            def on_bytes(n: int) -> None:
                nonlocal moved
                moved += n
                reporter.bytes(n)

            try:
                return copy_object(src_storage, item.source, dst_storage, target, on_bytes=on_bytes)
            except BaseException:
                reporter.bytes(-moved)
                raise

        size = retry_call(attempt, policy, on_retry=on_retry)
        with lock:
            result.copied.append(item.key)
            result.bytes_copied += size
        reporter.done(item.key, size)

    def delete_one(info: ObjectInfo) -> None:
        target = dst_uri.child("/".join(check_key(info.key)))  # 'a//b' must not delete 'a/b'
        retry_call(lambda: dst_storage.delete(target), policy, on_retry=on_retry)
        with lock:
            result.deleted.append(info.key)
        reporter.done(info.key, 0)

    lane, rest = async_lane(src_storage, dst_storage, dst_uri, to_copy)
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="cb-sync") as pool:
            gate = pool.submit(stale) if stale is not None else None  # first in the queue: no copy waits behind it
            futures = {pool.submit(copy_one, item): item for item in sorted(rest, key=lambda i: -i.source.size)}
            if lane:

                def lane_done(item: InflightItem) -> None:
                    reporter.bytes(item.size)
                    with lock:
                        result.copied.append(item.key)
                        result.bytes_copied += item.size
                    reporter.done(item.key, item.size)

                def lane_declined(item: InflightItem) -> None:
                    copy = copies[item.key]
                    futures[pool.submit(copy_one, copy)] = copy

                copies = {item.key: item for item in to_copy}
                lane_storage = src_storage if dst_uri.is_local else dst_storage
                limit = inflight or max(workers, getattr(lane_storage, "inflight_default", workers))
                try:
                    run_inflight(
                        lane,
                        limit=limit,
                        policy=policy,
                        succeeded=lane_done,
                        failed=lambda item, exc: fail(item.key, "copy", exc),
                        declined=lane_declined,
                        on_retry=on_retry,
                    )
                except BaseException:  # Ctrl-C: the pool's queued copies must not run on
                    for future in futures:
                        future.cancel()
                    raise
            _collect(futures, lambda i: i.key, "copy", fail)
            if gate is not None:
                result.aborted_uploads = gate.result()
            _run_all(pool, delete_one, to_delete, lambda i: i.key, "delete", fail)
    finally:
        reporter.close()
    result.copied.sort()
    result.deleted.sort()
    result.failures.sort(key=lambda f: f.key)


def _collect(
    futures: dict[Any, Any],
    key_of: Callable[[Any], str],
    op: str,
    fail: Callable[[str, str, BaseException], None],
) -> None:
    """Wait for every future (the dict may grow while this runs no more), recording failures."""
    try:
        for future in as_completed(list(futures)):
            exc = future.exception()
            if exc is not None:
                fail(key_of(futures[future]), op, exc)
    except BaseException:
        for future in futures:
            future.cancel()
        raise


def _run_all(
    pool: ThreadPoolExecutor,
    fn: Callable[[Any], None],
    items: list[Any],
    key_of: Callable[[Any], str],
    op: str,
    fail: Callable[[str, str, BaseException], None],
) -> None:
    _collect({pool.submit(fn, item): item for item in items}, key_of, op, fail)
