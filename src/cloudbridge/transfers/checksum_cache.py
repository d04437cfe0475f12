"""A persistent cache of file checksums: ``(path, size, mtime_ns, inode, ctime_ns) -> sha256``.

The ctime is part of the key because an in-place edit that keeps the size and puts the old mtime
back (``touch -d``, ``os.utime``, some editors and sync tools) changes nothing else: without it the old
digest, and so the old workdir package, would be reused.

Lives in ``CLOUDBRIDGE_HOME/cache/checksums.sqlite`` (WAL mode, so concurrent processes are fine).
It is only an optimisation: any SQLite problem turns into a cache miss, never an error. Used by
:class:`~cloudbridge.backends.local.storage.LocalStorage` so that hashing a large, unchanged tree
(``sync --checksum``, workdir packaging) costs one ``stat`` per file.
"""

from __future__ import annotations

import os
import threading
from typing import Any

__all__ = ["DiskCache", "disk_cache"]


class DiskCache:
    """A small SQLite table ``path, size, mtime_ns, inode, ctime_ns -> sha256`` under ``CLOUDBRIDGE_HOME``."""

    def __init__(self, db_path: str) -> None:
        import sqlite3

        self.path = db_path
        self.lock = threading.Lock()
        self.conn: Any = None
        try:
            from cloudbridge.settings import private_dir, private_file

            private_dir(os.path.dirname(db_path))
            private_file(db_path)  # paths of the user's files: 0600, like the rest of CLOUDBRIDGE_HOME
            conn = sqlite3.connect(db_path, timeout=5, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS checksums_v2 (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
                " inode INTEGER, ctime_ns INTEGER, sha256 TEXT)"
            )
            self.conn = conn
        except (OSError, sqlite3.Error):
            self.conn = None  # the cache is an optimisation; never fail because of it

    def close(self) -> None:
        """Close the connection (later calls become cache misses)."""
        with self.lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None

    def get(self, key: tuple[str, int, int, int, int]) -> str | None:
        """The cached sha256 for ``(path, size, mtime_ns, inode, ctime_ns)``, or ``None`` (a miss or no cache)."""
        if self.conn is None:
            return None
        import sqlite3

        try:
            with self.lock:
                if self.conn is None:
                    return None
                row = self.conn.execute(
                    "SELECT sha256 FROM checksums_v2 WHERE path=? AND size=? AND mtime_ns=? AND inode=? AND ctime_ns=?",
                    key,
                ).fetchone()
        except sqlite3.Error:
            return None
        return row[0] if row else None

    def put(self, key: tuple[str, int, int, int, int], digest: str) -> None:
        """Remember ``digest`` for ``(path, size, mtime_ns, inode, ctime_ns)``; a database error is ignored."""
        if self.conn is None:
            return
        import sqlite3

        try:
            with self.lock:
                if self.conn is None:
                    return
                self.conn.execute("INSERT OR REPLACE INTO checksums_v2 VALUES (?, ?, ?, ?, ?, ?)", (*key, digest))
        except sqlite3.Error:
            pass


_disk_current: list[DiskCache] = []
_disk_lock = threading.Lock()


def disk_cache() -> DiskCache:
    """The cache of the current ``CLOUDBRIDGE_HOME`` (one open at a time: tests switch homes often)."""
    from cloudbridge.settings import home_path

    db_path = os.path.join(home_path(), "cache", "checksums.sqlite")
    with _disk_lock:
        if _disk_current and _disk_current[0].path == db_path:
            return _disk_current[0]
        for old in _disk_current:
            old.close()
        _disk_current[:] = [DiskCache(db_path)]
        return _disk_current[0]
