"""Which :class:`~cloudbridge.interfaces.Storage` serves a URI, and cheap facts about URIs."""

from __future__ import annotations

import os
import threading

from cloudbridge.interfaces import Storage, URILike, as_uri
from cloudbridge.uri import StorageURI

__all__ = ["bucket_create_hint", "is_within", "local_storage", "resolve"]

_local: Storage | None = None
_lock = threading.Lock()

#: How to create a missing bucket or container, by scheme.
_CREATE_HINTS = {
    "s3": "create it with: aws s3 mb s3://{bucket}",
    "gs": "create it with: gcloud storage buckets create gs://{bucket}",
    "az": "create it with: az storage container create --account-name {account} --name {container}",
}


def local_storage() -> Storage:
    """The shared :class:`~cloudbridge.backends.local.storage.LocalStorage` (no settings needed)."""
    global _local
    with _lock:
        if _local is None:
            from cloudbridge.backends.local.storage import LocalStorage

            _local = LocalStorage()
        return _local


def resolve(uri: URILike, *, profile: str | None = None) -> tuple[Storage, StorageURI]:
    """``(storage, parsed URI)`` for ``uri``; local paths never need the plugin manager.

    An unknown scheme raises :class:`~cloudbridge.errors.InvalidURI` with the install hint; a
    ``file://`` URI or absolute path with a ``..`` segment raises :class:`~cloudbridge.errors.UnsafeKey`
    (the same rule as :class:`~cloudbridge.backends.local.storage.LocalStorage`).
    """
    if not isinstance(uri, StorageURI):
        text = os.fspath(uri)
        if text.startswith(("file://", "/")) and ".." in text.replace("\\", "/").split("/"):
            from cloudbridge.errors import UnsafeKey

            raise UnsafeKey(f"storage path {text!r} contains '..'; give the path without it")
    parsed = as_uri(uri)
    if parsed.is_local:
        return local_storage(), parsed
    from cloudbridge.transfers import storage_for

    return storage_for(parsed, profile=profile), parsed


def bucket_create_hint(uri: StorageURI) -> str | None:
    """The shell command that creates ``uri``'s bucket, for error messages."""
    template = _CREATE_HINTS.get(uri.scheme)
    if template is None:
        return None
    account, _, container = uri.bucket.partition("/")
    return template.format(bucket=uri.bucket, account=account, container=container)


def _norm(uri: StorageURI) -> tuple[str, str, str]:
    if uri.is_local:
        return ("file", "", os.path.realpath(uri.path).rstrip("/"))
    return (uri.scheme, uri.bucket, uri.key.strip("/"))


def is_within(inner: StorageURI, outer: StorageURI) -> bool:
    """True when ``inner`` is ``outer`` or lies below it (same scheme and bucket)."""
    a, b = _norm(inner), _norm(outer)
    if a[:2] != b[:2]:
        return False
    if not b[2] or a[2] == b[2]:
        return True
    return a[2].startswith(b[2] + "/")
