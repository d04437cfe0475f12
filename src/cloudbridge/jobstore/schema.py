"""The job store's SQLite schema and its migrations (see :mod:`cloudbridge.jobstore.store`).

Tables (schema version :data:`SCHEMA_VERSION`, kept in ``PRAGMA user_version``):

``jobs``
    one row per job: id, provider, name, state, native_id, spec (JSON, secrets redacted),
    outputs_uri, metrics, reason, detail, exit_code, created/started/ended/updated timestamps,
    attempts and extra (JSON).
``job_events``
    every state change, appended by the builtin ``cloudbridge_job_event`` observer.
``local_queue``, ``local_gpu_allocations``, ``local_runs``
    the local backend's GPU queue (arrival order ``seq``, with each job's priority, minimum GPU
    memory and GPU type for the scheduler), which GPU belongs to which job (the primary
    key on ``gpu`` makes sharing a GPU impossible) and each job's supervisor (pid, process start
    time, process group, heartbeat, cancel flag).

Adding a column: bump :data:`SCHEMA_VERSION`, add it to :data:`SCHEMA` (new files) and add the
``ALTER TABLE`` to :data:`MIGRATIONS` under the new version (existing files).
"""

from __future__ import annotations

import sqlite3
import time

__all__ = ["BUSY_TIMEOUT_MS", "MIGRATIONS", "SCHEMA", "SCHEMA_VERSION", "init_schema"]

SCHEMA_VERSION = 2
#: Changes from one schema version to the next, applied in order to older files (``CREATE ... IF NOT
#: EXISTS`` adds whole tables; columns added to existing tables need these).
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: ("ALTER TABLE local_queue ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE local_queue ADD COLUMN gpu_memory_gb REAL NOT NULL DEFAULT 0",
        "ALTER TABLE local_queue ADD COLUMN accelerator TEXT"),
}
BUSY_TIMEOUT_MS = 30_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    native_id TEXT,
    spec TEXT,
    outputs_uri TEXT,
    metrics TEXT NOT NULL DEFAULT '{}',
    reason TEXT,
    detail TEXT,
    exit_code INTEGER,
    created_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    updated_at REAL NOT NULL,
    attempts TEXT NOT NULL DEFAULT '[]',
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS jobs_provider_created ON jobs (provider, created_at);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
CREATE TABLE IF NOT EXISTS job_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    state TEXT NOT NULL,
    previous TEXT,
    time REAL NOT NULL,
    reason TEXT,
    detail TEXT,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS job_events_job ON job_events (job_id, seq);
CREATE TABLE IF NOT EXISTS local_queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL UNIQUE,
    gpus INTEGER NOT NULL,
    enqueued_at REAL NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    gpu_memory_gb REAL NOT NULL DEFAULT 0,
    accelerator TEXT
);
CREATE TABLE IF NOT EXISTS local_gpu_allocations (
    gpu INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    allocated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS local_gpu_allocations_job ON local_gpu_allocations (job_id);
CREATE TABLE IF NOT EXISTS local_runs (
    job_id TEXT PRIMARY KEY,
    supervisor_pid INTEGER,
    supervisor_start TEXT,
    pgid INTEGER,
    child_pid INTEGER,
    heartbeat REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
"""


def init_schema(conn: sqlite3.Connection) -> None:
    """Switch ``conn``'s file to WAL mode and bring its schema to :data:`SCHEMA_VERSION`.

    A new file gets every table; an older one is migrated step by step, all inside one
    ``BEGIN IMMEDIATE`` transaction, so concurrent processes never see half a schema.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:  # switching to WAL needs a moment with no other writer; retry briefly
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    if str(mode).lower() != "wal":  # pragma: no cover - filesystems without shared memory
        conn.execute("PRAGMA journal_mode = DELETE")
    if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # again, now that we hold the lock
        has_tables = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'jobs'").fetchone() is not None
        if has_tables and version < SCHEMA_VERSION:
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS.get(target, ()):
                    conn.execute(statement)
        for statement in SCHEMA.split(";"):  # not executescript(): it would COMMIT first
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
