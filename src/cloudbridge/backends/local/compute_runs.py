"""The ``local_runs`` table: each local job's supervisor, process group, heartbeat and cancel flag."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from cloudbridge.jobstore.store import JobStore

__all__ = ["RunInfo", "add_run", "cancel_requested", "heartbeat", "request_cancel", "run_info", "set_run"]

_FIELDS = {"supervisor_pid", "supervisor_start", "pgid", "child_pid", "heartbeat"}


@dataclass(frozen=True)
class RunInfo:
    """What the store knows about a local job's processes."""

    job_id: str
    supervisor_pid: int | None
    supervisor_start: str | None
    pgid: int | None
    child_pid: int | None
    heartbeat: float | None
    cancel_requested: bool


def add_run(conn: sqlite3.Connection, job_id: str) -> None:
    """Create the job's row (inside the transaction that creates the job)."""
    conn.execute("INSERT INTO local_runs (job_id, heartbeat) VALUES (?, ?)", (job_id, time.time()))


def set_run(store: JobStore, job_id: str, **fields: object) -> None:
    """Record supervisor pid/start time, process group, child pid or heartbeat."""
    unknown = set(fields) - _FIELDS
    if unknown:
        raise ValueError(f"unknown local_runs fields {sorted(unknown)}")
    assignments = ", ".join(f"{name} = ?" for name in fields)
    with store.transaction() as conn:
        conn.execute(f"UPDATE local_runs SET {assignments} WHERE job_id = ?", [*fields.values(), job_id])


def heartbeat(store: JobStore, job_id: str) -> bool:
    """Stamp the heartbeat; returns the cancel flag read in the same transaction."""
    with store.transaction() as conn:
        conn.execute("UPDATE local_runs SET heartbeat = ? WHERE job_id = ?", (time.time(), job_id))
        row = conn.execute("SELECT cancel_requested FROM local_runs WHERE job_id = ?", (job_id,)).fetchone()
    return bool(row and row[0])


def request_cancel(store: JobStore, job_id: str) -> None:
    """Raise the cancel flag; the job's supervisor stops the job on its next check."""
    with store.transaction() as conn:
        conn.execute("UPDATE local_runs SET cancel_requested = 1 WHERE job_id = ?", (job_id,))


def cancel_requested(store: JobStore, job_id: str) -> bool:
    """True once someone asked to cancel ``job_id``."""
    with store.connect() as conn:
        row = conn.execute("SELECT cancel_requested FROM local_runs WHERE job_id = ?", (job_id,)).fetchone()
    return bool(row and row[0])


def run_info(store: JobStore, job_id: str) -> RunInfo | None:
    """The job's row, or ``None`` (a job of another provider, or one created before this table)."""
    with store.connect() as conn:
        row = conn.execute("SELECT * FROM local_runs WHERE job_id = ?", (job_id,)).fetchone()
    if row is None:
        return None
    return RunInfo(
        row["job_id"], row["supervisor_pid"], row["supervisor_start"], row["pgid"], row["child_pid"],
        row["heartbeat"], bool(row["cancel_requested"]),
    )
