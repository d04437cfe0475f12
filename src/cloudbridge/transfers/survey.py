"""Before a sync moves anything: check both ends and list them -- remote ends concurrently.

:func:`survey` runs the checks of :func:`cloudbridge.transfers.sync.sync` in the order a user reads
their errors (source, then nesting, then destination) and returns both listings. The remote
requests -- a ``HEAD`` that tells an object from a prefix, one listing per end -- all go out in
parallel, so a sync against a cloud waits for one round trip where it used to wait for three.
Everything here only reads; :func:`abort_stale` is the one write, run after the checks passed.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

from cloudbridge.errors import BucketNotFound, CloudbridgeError, NotFound, UserError
from cloudbridge.interfaces import Storage
from cloudbridge.records import ObjectInfo
from cloudbridge.transfers.resolve import bucket_create_hint, is_within
from cloudbridge.transfers.retry import RetryPolicy, retry_call
from cloudbridge.uri import StorageURI

__all__ = ["abort_stale", "check_destination", "check_source", "list_objects", "survey"]

log = logging.getLogger("cloudbridge.transfers")


def _is_object(storage: Storage, uri: StorageURI, policy: RetryPolicy) -> bool:
    """Whether a remote ``uri`` names an existing object (one ``HEAD``; a key ending in ``/`` never does)."""
    if not uri.key or uri.key.endswith("/"):
        return False
    return retry_call(lambda: storage.exists(uri), policy)


def check_source(storage: Storage, uri: StorageURI, policy: RetryPolicy) -> None:
    """The source must be an existing directory, or a prefix that is not an object."""
    shown = str(uri)
    if uri.is_local:
        if os.path.isfile(uri.path):
            raise UserError(
                f"source {shown} is a file; sync works on directories/prefixes",
                hint=f"copy one file with: cloudbridge storage cp {shown} DST",
            )
        if not os.path.isdir(uri.path):
            raise NotFound(f"source {shown} does not exist")
        return
    if _is_object(storage, uri, policy):
        raise UserError(
            f"source {shown} is an object, not a prefix; sync works on prefixes",
            hint=f"copy one object with: cloudbridge storage cp {shown} DST",
        )


def check_destination(storage: Storage, uri: StorageURI, policy: RetryPolicy) -> None:
    """The destination must not be a file / an object (a missing one is fine)."""
    shown = str(uri)
    if uri.is_local:
        if os.path.exists(uri.path) and not os.path.isdir(uri.path):
            raise UserError(f"destination {shown} is a file; sync needs a directory or prefix")
        return
    if _is_object(storage, uri, policy):
        raise UserError(f"destination {shown} is an object; sync needs a prefix")


def list_objects(storage: Storage, uri: StorageURI, role: str, policy: RetryPolicy) -> list[ObjectInfo]:
    """Every object under ``uri``; a missing bucket is :class:`NotFound` naming the ``role``."""
    try:
        return retry_call(lambda: list(storage.list(uri, recursive=True)), policy)
    except NotFound as exc:
        if uri.is_local:
            return []
        hint = bucket_create_hint(uri) if role == "destination" else None
        if isinstance(exc, BucketNotFound):
            raise BucketNotFound.of(uri.scheme, uri.bucket, role=role, hint=hint) from exc
        raise NotFound(f"{role} bucket of {uri} does not exist ({exc.message})", hint=hint) from exc


def survey(
    src_storage: Storage,
    src_uri: StorageURI,
    dst_storage: Storage,
    dst_uri: StorageURI,
    *,
    delete: bool,
    policy: RetryPolicy,
) -> tuple[list[ObjectInfo], list[ObjectInfo]]:
    """Check both ends (raising the first error a user should see) and list them."""
    src_shown, dst_shown = str(src_uri), str(dst_uri)
    if src_uri.is_local:
        check_source(src_storage, src_uri, policy)
    if is_within(dst_uri, src_uri):
        raise UserError(f"destination {dst_shown} is inside the source {src_shown}; choose a destination outside it")
    if delete and is_within(src_uri, dst_uri):
        raise UserError(f"source {src_shown} is inside the destination {dst_shown}; --delete would remove it")
    if dst_uri.is_local:
        check_destination(dst_storage, dst_uri, policy)

    if src_uri.is_local and dst_uri.is_local:
        src_objects = list_objects(src_storage, src_uri, "source", policy)
        return src_objects, list_objects(dst_storage, dst_uri, "destination", policy)
    # Remote ends: the HEAD that tells an object from a prefix and the listing go out together
    # (one round trip, not two); the results are read in the order a user reads the errors.
    with ThreadPoolExecutor(4, thread_name_prefix="cb-survey") as pool:
        src_check = None if src_uri.is_local else pool.submit(check_source, src_storage, src_uri, policy)
        dst_check = None if dst_uri.is_local else pool.submit(check_destination, dst_storage, dst_uri, policy)
        src_list = pool.submit(list_objects, src_storage, src_uri, "source", policy)
        dst_list = pool.submit(list_objects, dst_storage, dst_uri, "destination", policy)
        if src_check is not None:
            src_check.result()
        src_objects = src_list.result()
        if not src_objects and not src_uri.is_local:
            raise NotFound(f"source {src_shown} has no objects (is the prefix right?)")
        if dst_check is not None:
            dst_check.result()
        return src_objects, dst_list.result()


def abort_stale(storage: Storage, uri: StorageURI, older_than_s: float, policy: RetryPolicy) -> int:
    """:meth:`Storage.abort_incomplete` on ``uri``; a failure (say, no permission) only warns."""
    try:
        return retry_call(lambda: storage.abort_incomplete(uri, older_than_s=older_than_s), policy)
    except CloudbridgeError as exc:
        log.warning("could not abort stale uploads under %s: %s", uri, exc.message)
        return 0
