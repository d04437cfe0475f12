"""Everyday storage operations on URIs, for the SDK and ``cloudbridge storage``: ls, cp, rm, du.

Each works on any registered scheme (``file`` paths included) and raises
:mod:`cloudbridge.errors` types with one clear line on bad input.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cloudbridge.errors import NotFound, UserError
from cloudbridge.interfaces import Storage, URILike
from cloudbridge.records import ObjectInfo
from cloudbridge.transfers.resolve import is_within, resolve
from cloudbridge.transfers.retry import RetryPolicy, retry_call
from cloudbridge.transfers.sync import SyncResult, transfer_tree
from cloudbridge.transfers.transfer import copy_object
from cloudbridge.uri import StorageURI, check_key

__all__ = ["cp", "du", "ls", "rm"]


def _is_prefix_like(storage: Storage, uri: StorageURI) -> bool:
    if uri.is_local:
        return os.path.isdir(uri.path)
    return uri.key == "" or uri.key.endswith("/") or next(iter(storage.list(uri, recursive=False)), None) is not None


def ls(uri: URILike, *, recursive: bool = False, profile: str | None = None) -> list[ObjectInfo]:
    """Objects (and, non-recursively, ``name/`` sub-prefixes) under ``uri``, or the one object it names."""
    storage, parsed = resolve(uri, profile=profile)
    items = list(storage.list(parsed, recursive=recursive))
    if items or (not parsed.is_local and (not parsed.key or parsed.key.endswith("/"))):
        return items
    try:
        info = storage.stat(parsed)
    except NotFound:
        if parsed.is_local and os.path.isdir(parsed.path):
            return []
        if parsed.is_local or parsed.key:
            raise NotFound(f"nothing at {parsed}") from None
        return []
    name = os.path.basename(parsed.key.rstrip("/"))
    return [ObjectInfo(info.uri, name, info.size, info.mtime, info.etag, info.checksum)]


def du(uri: URILike, *, profile: str | None = None) -> tuple[int, int]:
    """``(object count, total bytes)`` under ``uri`` (or of the single object it names)."""
    storage, parsed = resolve(uri, profile=profile)
    count, total = storage.du(parsed)
    if count == 0:
        try:
            info = storage.stat(parsed)
        except NotFound:
            if parsed.is_local and not os.path.exists(parsed.path):
                raise NotFound(f"nothing at {parsed}") from None
            return 0, 0
        return 1, info.size
    return count, total


def cp(
    src: URILike,
    dst: URILike,
    *,
    recursive: bool = False,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    progress: bool | Callable[[dict[str, Any]], None] | None = None,
    workers: int | None = None,
    profile: str | None = None,
) -> SyncResult | ObjectInfo:
    """Copy one object (to ``dst``, or into ``dst`` when it is a directory or ends in ``/``), or,
    with ``recursive=True``, every object under the prefix ``src`` (returns a :class:`SyncResult`)."""
    if recursive:
        return transfer_tree(
            src, dst, include=include, exclude=exclude, progress=progress, workers=workers, profile=profile, force=True
        )
    src_storage, src_uri = resolve(src, profile=profile)
    dst_storage, dst_uri = resolve(dst, profile=profile)
    if src_uri.is_local and os.path.isdir(src_uri.path):
        raise UserError(f"{src_uri} is a directory; copy it with cp -r (or use sync)")
    try:
        info = src_storage.stat(src_uri)
    except NotFound:
        if not src_uri.is_local and _is_prefix_like(src_storage, src_uri):
            raise UserError(f"{src_uri} is a prefix; copy it with cp -r (or use sync)") from None
        raise NotFound(f"source {src_uri} does not exist") from None
    text = os.fspath(dst) if not isinstance(dst, StorageURI) else str(dst)
    into = text.endswith("/") or (dst_uri.is_local and os.path.isdir(dst_uri.path))
    if into:
        name = os.path.basename(src_uri.path if src_uri.is_local else src_uri.key.rstrip("/"))
        dst_uri = dst_uri.child(name)
    if is_within(dst_uri, src_uri) and is_within(src_uri, dst_uri):
        raise UserError(f"{src_uri} and {dst_uri} are the same object")
    retry_call(lambda: copy_object(src_storage, info, dst_storage, dst_uri))
    return dst_storage.stat(dst_uri)


def rm(uri: URILike, *, recursive: bool = False, workers: int = 16, profile: str | None = None) -> int:
    """Delete one object, or with ``recursive=True`` every object under the prefix; return the count.

    A recursive delete lists first and deletes exactly the listed keys below ``uri``, nothing else.
    """
    storage, parsed = resolve(uri, profile=profile)
    if not recursive:
        if parsed.is_local and os.path.isdir(parsed.path):
            raise UserError(f"{parsed} is a directory; delete it with rm -r")
        if not storage.exists(parsed):
            if not parsed.is_local and _is_prefix_like(storage, parsed):
                raise UserError(f"{parsed} is a prefix; delete it with rm -r")
            raise NotFound(f"no such object: {parsed}")
        storage.delete(parsed)
        return 1
    items = [i for i in storage.list(parsed, recursive=True) if not i.key.endswith("/")]
    if not items:
        if storage.exists(parsed):
            storage.delete(parsed)
            return 1
        raise NotFound(f"nothing at {parsed}")
    for item in items:  # 'a//b' would delete 'a/b' instead: refuse before deleting anything
        check_key(item.key)
    policy = RetryPolicy()
    with ThreadPoolExecutor(max(1, workers)) as pool:
        list(pool.map(lambda i: retry_call(lambda: storage.delete(parsed.child(i.key)), policy), items))
    if parsed.is_local:
        _remove_empty_dirs(parsed.path)
    return len(items)


def _remove_empty_dirs(root: str) -> None:
    for directory, _dirs, _files in os.walk(root, topdown=False):
        try:
            os.rmdir(directory)
        except OSError:
            pass
