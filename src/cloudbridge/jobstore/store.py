"""The job store: every job of every provider in one SQLite file.

The file is ``CLOUDBRIDGE_HOME/cloudbridge.db``. It is opened in WAL mode with a busy timeout,
and every write runs inside ``BEGIN IMMEDIATE ... COMMIT``, so concurrent CLI processes,
supervisors and SDK calls never interleave half-done changes, and a crash (of any of them, at any
moment) leaves either the old or the new state, never a mix. Each operation opens its own short
connection: no connection is shared across threads or ``fork``.

The tables, their schema version and migrations are in :mod:`cloudbridge.jobstore.schema`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cloudbridge.errors import ConflictError, NotFound
from cloudbridge.jobstore.schema import BUSY_TIMEOUT_MS, SCHEMA_VERSION, init_schema
from cloudbridge.records import Job, JobState
from cloudbridge.redaction import redact_mapping, redact_spec, redact_text

__all__ = ["DB_NAME", "SCHEMA_VERSION", "JobStore"]

DB_NAME = "cloudbridge.db"
_RANK = {JobState.PENDING: 0, JobState.STARTING: 1, JobState.RUNNING: 2, JobState.SUCCEEDED: 3, JobState.FAILED: 3,
         JobState.CANCELLED: 3}
#: Keys of ``Job.extra`` that are computed when a job is read and never stored.
_VIEW_ONLY = {"events", "queue_position"}
_JSON_FIELDS = {"metrics": dict, "attempts": list, "extra": dict}
_UPDATABLE = {"name", "native_id", "outputs_uri", "metrics", "reason", "detail", "exit_code", "started_at",
              "ended_at", "attempts", "extra"}


class JobStore:
    """Job records in SQLite. Construct with a path, or use :meth:`default`.

    All methods are safe to call from several processes at once.
    """

    _initialised: set[str] = set()  # database files whose schema this process has checked

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @classmethod
    def default(cls) -> JobStore:
        """The store under the current ``CLOUDBRIDGE_HOME``."""
        from cloudbridge.settings import cloudbridge_home

        return cls(cloudbridge_home() / DB_NAME)

    # ---- connections ------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        key, fresh = str(self.path.resolve()), not self.path.exists()
        if fresh:  # 0600 before SQLite creates it (its -wal and -shm files take the same mode)
            from cloudbridge.settings import private_file

            private_file(self.path)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        if fresh or key not in JobStore._initialised:
            init_schema(conn)
            JobStore._initialised.add(key)
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection for reads (autocommit: each statement sees committed data)."""
        conn = self._open()
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception)."""
        conn = self._open()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    # ---- jobs -------------------------------------------------------------------------------
    def insert_job(
        self,
        job: Job,
        spec: dict[str, Any] | None = None,
        *,
        also: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """Add a new job (``ConflictError`` if the id exists); ``also`` runs in the same transaction."""
        now = time.time()
        row = _job_to_row(job, now)
        row["spec"] = json.dumps(redact_spec(spec), default=str) if spec is not None else None
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self.transaction() as conn:
            try:
                conn.execute(f"INSERT INTO jobs ({columns}) VALUES ({marks})", list(row.values()))
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"a job with id {job.id!r} already exists") from exc
            if also is not None:
                also(conn)

    def find(self, job_id: str) -> Job | None:
        """The job ``job_id``, or ``None``."""
        with self.connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row_to_job(row) if row else None

    def get(self, job_id: str) -> Job:
        """The job ``job_id``; :class:`NotFound` when there is none."""
        job = self.find(job_id)
        if job is None:
            raise NotFound(f"no job with id {job_id!r}", hint="list jobs with: cloudbridge jobs")
        return job

    def spec(self, job_id: str) -> dict[str, Any] | None:
        """The stored (redacted) spec of ``job_id``."""
        with self.connect() as conn:
            row = conn.execute("SELECT spec FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"no job with id {job_id!r}")
        return json.loads(row["spec"]) if row["spec"] else None

    def list(
        self,
        provider: str | None = None,
        *,
        states: Iterable[JobState] | None = None,
        limit: int | None = None,
    ) -> list[Job]:
        """Jobs, newest first, optionally of one provider and in some states."""
        sql, args = "SELECT * FROM jobs WHERE 1 = 1", []
        if provider is not None:
            sql += " AND provider = ?"
            args.append(provider)
        if states is not None:
            wanted = [JobState(s).value for s in states]
            sql += f" AND state IN ({', '.join('?' for _ in wanted)})"
            args.extend(wanted)
        sql += " ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self.connect() as conn:
            return [_row_to_job(row) for row in conn.execute(sql, args)]

    def update(self, job_id: str, **fields: Any) -> Job:
        """Change fields other than ``state``; ``extra`` is merged key by key."""
        with self.transaction() as conn:
            _update_in(conn, job_id, fields)
            return _row_to_job(conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def transition(
        self,
        job_id: str,
        state: JobState,
        *,
        expect: Iterable[JobState] | None = None,
        also: Callable[[sqlite3.Connection], None] | None = None,
        **fields: Any,
    ) -> tuple[Job, JobState] | None:
        """Move the job to ``state`` (and set ``fields``) atomically.

        Returns ``(job, previous_state)``, or ``None`` (changing nothing) when the job is already
        terminal, or its state is not in ``expect``. ``also(conn)`` runs in the same transaction.
        """
        state = JobState(state)
        with self.transaction() as conn:
            row = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise NotFound(f"no job with id {job_id!r}")
            previous = JobState(row["state"])
            if previous.is_terminal or (expect is not None and previous not in set(expect)):
                return None
            if state.is_terminal and "ended_at" not in fields:
                fields["ended_at"] = time.time()
            conn.execute("UPDATE jobs SET state = ? WHERE id = ?", (state.value, job_id))
            _update_in(conn, job_id, fields)
            if also is not None:
                also(conn)
            job = _row_to_job(conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())
        return job, previous

    def record(self, job: Job, spec: dict[str, Any] | None = None) -> JobState | None | bool:
        """Insert or refresh a job as its provider reported it (used by the SDK for every provider).

        Returns ``None`` for a new job, the previous state when the state changed, and ``False``
        when it did not. States only move forward (PENDING < STARTING < RUNNING < terminal): a
        stale report never rolls a record back, and a terminal state is final.
        """
        return self.record_seen(job, spec)[0]

    def record_seen(self, job: Job, spec: dict[str, Any] | None = None
                    ) -> tuple[JobState | None | bool, tuple[JobState, list[dict[str, Any]]] | None]:
        """:meth:`record`, and the ``(state, attempts)`` stored before it, read in the same transaction.

        The second item is ``None`` for a new job or one whose stored state was already terminal. Two
        processes recording the same change see it once: only one of them gets the old attempts and
        a changed state back, so events derived from them fire once.
        """
        try:
            self.insert_job(job, spec)
            return None, None
        except ConflictError:
            pass
        with self.transaction() as conn:
            row = conn.execute("SELECT state, attempts FROM jobs WHERE id = ?", (job.id,)).fetchone()
            previous = JobState(row["state"])
            before = None if previous.is_terminal else (previous, json.loads(row["attempts"] or "[]"))
            fields = {k: v for k, v in _job_to_row(job, time.time()).items() if k in _UPDATABLE}
            fields = {k: v for k, v in fields.items() if v not in (None, "{}", "[]")}
            if previous.is_terminal:
                fields = {}
            for name in _JSON_FIELDS:
                if name in fields:
                    fields[name] = json.loads(fields[name])
            changed = _RANK[job.state] > _RANK[previous]  # states only move forward
            if changed:
                conn.execute("UPDATE jobs SET state = ? WHERE id = ?", (job.state.value, job.id))
            _update_in(conn, job.id, fields)
        return (previous if changed else False), before

    def delete(self, job_id: str) -> None:
        """Forget a job and its events (its files are not touched)."""
        with self.transaction() as conn:
            for table in ("jobs", "local_queue", "local_gpu_allocations", "local_runs"):
                column = "id" if table == "jobs" else "job_id"
                conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (job_id,))
            conn.execute("DELETE FROM job_events WHERE job_id = ?", (job_id,))

    # ---- events -----------------------------------------------------------------------------
    def add_event(self, event: Any) -> None:
        """Append a :class:`~cloudbridge.hookspecs.JobEvent` to its job's history."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO job_events (job_id, state, previous, time, reason, detail, extra) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    event.job_id, str(event.state), event.previous and str(event.previous), event.time,
                    event.reason, event.detail and redact_text(event.detail),
                    json.dumps(redact_mapping(dict(event.extra)), default=str),
                ),
            )

    def events(self, job_id: str) -> list[dict[str, Any]]:
        """The job's state changes, oldest first."""
        with self.connect() as conn:
            rows = conn.execute("SELECT * FROM job_events WHERE job_id = ? ORDER BY seq", (job_id,)).fetchall()
        return [{**dict(row), "extra": json.loads(row["extra"])} for row in rows]


def _update_in(conn: sqlite3.Connection, job_id: str, fields: dict[str, Any]) -> None:
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"cannot update job fields {sorted(unknown)}")
    if "extra" in fields:
        row = conn.execute("SELECT extra FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"no job with id {job_id!r}")
        fields = {**fields, "extra": {**json.loads(row["extra"]), **fields["extra"]}}
    values = {k: (json.dumps(redact_mapping(v), default=str) if k in _JSON_FIELDS else v) for k, v in fields.items()}
    if isinstance(values.get("detail"), str):  # a failure detail quotes log lines: never store a secret from them
        values["detail"] = redact_text(values["detail"])
    values["updated_at"] = time.time()
    assignments = ", ".join(f"{k} = ?" for k in values)
    cursor = conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", [*values.values(), job_id])
    if cursor.rowcount == 0:
        raise NotFound(f"no job with id {job_id!r}")


def _job_to_row(job: Job, now: float) -> dict[str, Any]:
    return {
        "id": job.id,
        "provider": job.provider,
        "name": job.name,
        "state": JobState(job.state).value,
        "native_id": job.native_id,
        "outputs_uri": job.outputs_uri,
        "metrics": json.dumps(job.metrics or {}, default=str),
        "reason": job.reason,
        "detail": redact_text(job.detail) if job.detail else job.detail,
        "exit_code": job.exit_code,
        "created_at": job.created_at if job.created_at is not None else now,
        "started_at": job.started_at,
        "ended_at": job.ended_at,
        "updated_at": now,
        "attempts": json.dumps(job.attempts or [], default=str),
        "extra": json.dumps(redact_mapping({k: v for k, v in (job.extra or {}).items() if k not in _VIEW_ONLY}),
                            default=str),
    }


def _row_to_job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        provider=row["provider"],
        name=row["name"],
        state=JobState(row["state"]),
        native_id=row["native_id"],
        outputs_uri=row["outputs_uri"],
        metrics=json.loads(row["metrics"]),
        reason=row["reason"],
        detail=row["detail"],
        exit_code=row["exit_code"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        attempts=json.loads(row["attempts"]),
        extra=json.loads(row["extra"]),
    )
