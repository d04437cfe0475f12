"""Download an object, or every object under a prefix, into a local folder: the one checked way.

Every place that brings bucket contents onto a disk (local job staging, ``cloudbridge emulate``, the
training data cache, model artifacts for serving) goes through :func:`download`, so one rule decides
where a listed key may land. A bucket is input from someone else: its keys are refused, with their
name, when they could land outside the target or be merged with another key::

    data//T/X/pwned    empty segment (joined naively it becomes the absolute path /T/X/pwned)
    data/../x  a/./b   '..' or '.' segment
    /abs               leading '/'
    a\\b                backslash (a separator on Windows, an escape elsewhere)
    a\\x00b  a\\nb       NUL or another control character

Nothing is written when any key under the prefix is refused: the listing is checked whole first.
"""

from __future__ import annotations

import os
from pathlib import Path

from cloudbridge.errors import NotFound, UnsafeKey
from cloudbridge.interfaces import Storage, URILike, as_uri
from cloudbridge.uri import check_key

__all__ = ["check_key", "checked_join", "download", "download_prefix"]


def checked_join(root: str | os.PathLike[str], key: str) -> Path:
    """``root/key`` for a relative object key, refused (:class:`UnsafeKey`) unless it stays inside ``root``.

    Besides :func:`check_key`, the folder the file would be written in is resolved (symlinks
    included) and must lie inside ``root`` resolved.
    """
    base = Path(root)
    path = base.joinpath(*check_key(key))
    real_root = os.path.realpath(base)
    real_parent = os.path.realpath(path.parent)
    if real_parent != real_root and not real_parent.startswith(real_root.rstrip(os.sep) + os.sep):
        raise UnsafeKey(f"object key {key!r} would be written at {real_parent}, outside {real_root}; refused")
    return path


def _storage(uri: URILike, storage: Storage | None) -> Storage:
    if storage is not None:
        return storage
    from cloudbridge.transfers import storage_for

    return storage_for(uri)


def download_prefix(uri: URILike, target: str | os.PathLike[str], *, storage: Storage | None = None) -> list[Path]:
    """Download every object under the prefix ``uri`` into the folder ``target``; return the files written.

    Each object lands at ``target/<key relative to the prefix>``. The whole listing is checked before
    anything is written: an unsafe key (see :func:`check_key`), or two keys that need one path as a
    file and as a folder (``a`` and ``a/b``), raise :class:`UnsafeKey` naming the key and the prefix.
    Keys ending in ``/`` (folder markers made by consoles) are skipped, as ``sync`` skips them.
    """
    store = _storage(uri, storage)
    text = str(as_uri(uri))
    prefix = text.rstrip("/") + "/"
    plan: list[tuple[str, str]] = []
    files: set[tuple[str, ...]] = set()
    folders: set[tuple[str, ...]] = set()
    for info in store.list(prefix, recursive=True):
        if info.key.endswith("/"):
            continue  # a folder marker (as sync's plan treats it): no file can have this name
        try:
            parts = check_key(info.key)
        except UnsafeKey as exc:
            raise UnsafeKey(f"{prefix}: {exc}") from None
        for depth in range(1, len(parts)):
            folders.add(parts[:depth])
        files.add(parts)
        plan.append((info.uri, info.key))
    clash = sorted(files & folders)
    if clash:
        key = "/".join(clash[0])
        raise UnsafeKey(f"{prefix}: object key {key!r} is both an object and a folder of other objects; refused")
    os.makedirs(target, exist_ok=True)
    written = []
    for source, key in plan:
        path = checked_join(target, key)  # also: no symlinked folder already there leads out
        store.download(source, path)
        written.append(path)
    return written


def download(
    uri: URILike,
    target: str | os.PathLike[str],
    *,
    required: bool = True,
    storage: Storage | None = None,
) -> list[Path]:
    """Download the object ``uri`` into ``target/<its name>``, or else every object under the prefix ``uri``.

    An object wins over a prefix of the same name; a URI ending in ``/`` is always a prefix. Returns
    the local files written. Nothing at ``uri`` raises :class:`NotFound` when ``required``, and
    returns ``[]`` otherwise. Keys are checked as :func:`download_prefix` says.
    """
    parsed = as_uri(uri)
    store = _storage(parsed, storage)
    os.makedirs(target, exist_ok=True)
    name = parsed.key.rstrip("/").rsplit("/", 1)[-1]
    if name and not parsed.key.endswith("/"):
        path = checked_join(target, name)
        try:  # one request: the object's own GET/HEAD says whether it exists
            store.download(parsed, path)
            return [path]
        except NotFound:
            pass  # not an object: a prefix
    written = download_prefix(parsed, target, storage=store)
    if not written and required:
        raise NotFound(f"no object and no objects under the prefix {parsed}")
    return written
