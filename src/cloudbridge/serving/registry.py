"""Endpoint records in SQLite: ``CLOUDBRIDGE_HOME/endpoints.sqlite3``.

One row per ``(provider, name)``. Writes run in ``BEGIN IMMEDIATE`` transactions in WAL mode, so
concurrent CLI calls never see half a record and two deploys of one name cannot both win:
:meth:`EndpointRegistry.reserve` is the atomic claim, and the loser gets
:class:`~cloudbridge.errors.ConflictError`. Kept apart from the job store on purpose: endpoints
and jobs have different lives and different owners.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cloudbridge.errors import ConflictError

__all__ = ["EndpointRecord", "EndpointRegistry", "registry_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS endpoints (
    provider   TEXT NOT NULL,
    name       TEXT NOT NULL,
    state      TEXT NOT NULL,
    model      TEXT,
    url        TEXT,
    port       INTEGER,
    pid        INTEGER,
    handler    TEXT,
    task       TEXT,
    log_path   TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    extra      TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (provider, name)
)
"""
_COLUMNS = ("provider", "name", "state", "model", "url", "port", "pid", "handler", "task", "log_path",
            "created_at", "updated_at", "extra")


def registry_path() -> Path:
    """``CLOUDBRIDGE_HOME/endpoints.sqlite3``."""
    from cloudbridge.settings import cloudbridge_home

    return cloudbridge_home() / "endpoints.sqlite3"


@dataclass
class EndpointRecord:
    """What cloudbridge remembers about one endpoint."""

    provider: str
    name: str
    state: str
    model: str | None = None
    url: str | None = None
    port: int | None = None
    pid: int | None = None
    handler: str | None = None
    task: str | None = None
    log_path: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class EndpointRegistry:
    """CRUD on endpoint records; safe across threads and processes."""

    def __init__(self, path: str | Path | None = None) -> None:
        from cloudbridge.settings import private_dir, private_file

        self.path = Path(path) if path else registry_path()
        private_dir(self.path.parent)
        private_file(self.path)  # endpoint records: 0600
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @staticmethod
    def _row(row: tuple[Any, ...]) -> EndpointRecord:
        data = dict(zip(_COLUMNS, row, strict=True))
        data["extra"] = json.loads(data["extra"] or "{}")
        return EndpointRecord(**data)

    def reserve(self, record: EndpointRecord) -> EndpointRecord:
        """Insert ``record``; :class:`ConflictError` if ``(provider, name)`` is taken."""
        values = record.to_dict()
        values["extra"] = json.dumps(values["extra"])
        with self._write() as db:
            found = db.execute(
                "SELECT state FROM endpoints WHERE provider=? AND name=?", (record.provider, record.name)
            ).fetchone()
            if found:
                raise ConflictError(
                    f"endpoint name {record.name!r} is already taken on {record.provider} (state {found[0]})",
                    hint=f"cloudbridge undeploy {record.name}, or choose another --name",
                )
            db.execute(
                f"INSERT INTO endpoints ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                [values[c] for c in _COLUMNS],
            )
        return record

    def update(self, provider: str, name: str, **changes: Any) -> EndpointRecord | None:
        """Change some fields of a record (``extra`` is merged); ``None`` if it is gone."""
        with self._write() as db:
            row = db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM endpoints WHERE provider=? AND name=?", (provider, name)
            ).fetchone()
            if row is None:
                return None
            record = self._row(row)
            extra = {**record.extra, **changes.pop("extra", {})}
            for key, value in changes.items():
                if key not in _COLUMNS or key in ("provider", "name"):
                    raise ValueError(f"cannot update endpoint field {key!r}")
                setattr(record, key, value)
            record.extra = extra
            record.updated_at = time.time()
            assignments = [c for c in _COLUMNS if c not in ("provider", "name")]
            values = record.to_dict()
            values["extra"] = json.dumps(extra)
            db.execute(
                f"UPDATE endpoints SET {', '.join(f'{c}=?' for c in assignments)} WHERE provider=? AND name=?",
                [values[c] for c in assignments] + [provider, name],
            )
        return record

    def get(self, provider: str, name: str) -> EndpointRecord | None:
        """One record, or ``None``."""
        with self._connect() as db:
            row = db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM endpoints WHERE provider=? AND name=?", (provider, name)
            ).fetchone()
        return self._row(row) if row else None

    def list(self, provider: str | None = None) -> list[EndpointRecord]:
        """Records of ``provider`` (all when ``None``), oldest first."""
        query = f"SELECT {', '.join(_COLUMNS)} FROM endpoints"
        args: tuple[Any, ...] = ()
        if provider is not None:
            query += " WHERE provider=?"
            args = (provider,)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY created_at, name", args).fetchall()
        return [self._row(r) for r in rows]

    def remove(self, provider: str, name: str) -> bool:
        """Delete a record; ``False`` when there was none."""
        with self._write() as db:
            cursor = db.execute("DELETE FROM endpoints WHERE provider=? AND name=?", (provider, name))
            return cursor.rowcount > 0
