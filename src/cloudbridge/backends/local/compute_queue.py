"""GPU allocation and the queue of jobs waiting for GPUs, kept in the job store.

How it works
------------
* A job that asks for ``k`` GPUs (``resources.accelerators``) is put in ``local_queue`` in the same
  transaction that creates its record. Jobs that ask for none never queue.
* :func:`promote` looks at the free GPUs and the queue, asks the queue policy which queued jobs to
  start, and -- in one ``BEGIN IMMEDIATE`` transaction -- writes their rows into
  ``local_gpu_allocations`` (primary key ``gpu``: a GPU can belong to one job only, enforced by
  SQLite itself) and removes them from the queue.
* Anyone may call :func:`promote`; the outcome only depends on the database, so it does not matter
  who does. It is called by ``submit``, by every waiting job's supervisor on each poll (so a queued
  job starts even if every other process is gone), and by a finishing supervisor right after it
  released its GPUs (so the next job starts at once).
* A job gives its GPUs back (:func:`release`) in the same transaction that records its final state.

The policy is one function, :data:`queue_policy`: by default :func:`planner_policy` (the planner's
``pick_next``: priorities with aging, best fit by GPU memory, no starvation); :func:`fifo_fits_first`
remains available via :func:`set_queue_policy`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cloudbridge.jobstore.store import JobStore

__all__ = [
    "QueuedJob",
    "allocation",
    "enqueue",
    "fifo_fits_first",
    "planner_policy",
    "promote",
    "queue_policy",
    "queue_position",
    "release",
    "set_queue_policy",
]


@dataclass(frozen=True)
class QueuedJob:
    """A job waiting for ``gpus`` GPUs; ``seq`` is its arrival order (lower = earlier).

    ``priority`` (higher runs first), ``gpu_memory_gb`` (minimum per GPU, 0 = any) and
    ``accelerator`` (canonical GPU type its GPUs must have, ``None`` = any) come from the job's
    ``resources`` and are what the scheduler's best fit and priorities work on.
    """

    job_id: str
    gpus: int
    seq: int
    enqueued_at: float
    priority: int = 0
    gpu_memory_gb: float = 0.0
    accelerator: str | None = None


Policy = Callable[[Sequence[QueuedJob], Sequence[int]], list[tuple[str, list[int]]]]


def fifo_fits_first(queue: Sequence[QueuedJob], free_gpus: Sequence[int]) -> list[tuple[str, list[int]]]:
    """Walk the queue oldest first; start every job that fits in the GPUs still free.

    A job that does not fit yet keeps its place, and a later, smaller job that fits may start
    before it ("fits first"), so small jobs are never stuck behind a big one. The price is that
    a big job can wait while small ones keep arriving; a priority policy can trade that off.
    Returns ``[(job_id, [gpu, ...]), ...]`` with the lowest free GPU indices handed out first.
    """
    free = sorted(free_gpus)
    picks: list[tuple[str, list[int]]] = []
    for job in sorted(queue, key=lambda q: q.seq):
        if 0 < job.gpus <= len(free):
            picks.append((job.job_id, free[: job.gpus]))
            free = free[job.gpus :]
    return picks


def planner_policy(queue: Sequence[QueuedJob], free_gpus: Sequence[int]) -> list[tuple[str, list[int]]]:
    """The default: the planner's policy (priorities with aging, best fit by GPU memory, backfill
    until the head has waited 30 minutes, then GPUs are held for it -- no starvation); see
    :func:`cloudbridge.planner.scheduler.pick_next`."""
    from cloudbridge.planner.scheduler import local_queue_policy

    return local_queue_policy(queue, free_gpus)


queue_policy: Policy = planner_policy


def set_queue_policy(policy: Policy | None) -> None:
    """Replace the queue policy (``None`` restores :func:`planner_policy`)."""
    global queue_policy
    queue_policy = policy or planner_policy


def enqueue(conn: sqlite3.Connection, job_id: str, gpus: int, *, priority: int = 0, gpu_memory_gb: float = 0.0,
            accelerator: str | None = None) -> None:
    """Put ``job_id`` in the queue (call inside the transaction that creates the job), with what the
    scheduler needs: its priority, minimum memory per GPU and required GPU type (canonical name)."""
    conn.execute(
        "INSERT INTO local_queue (job_id, gpus, enqueued_at, priority, gpu_memory_gb, accelerator) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (job_id, gpus, time.time(), priority, gpu_memory_gb, accelerator),
    )


def release(conn: sqlite3.Connection, job_id: str) -> None:
    """Free ``job_id``'s GPUs and drop it from the queue (inside the transaction that ends it)."""
    conn.execute("DELETE FROM local_gpu_allocations WHERE job_id = ?", (job_id,))
    conn.execute("DELETE FROM local_queue WHERE job_id = ?", (job_id,))


def _state(conn: sqlite3.Connection) -> tuple[set[int], list[QueuedJob]]:
    used = {row[0] for row in conn.execute("SELECT gpu FROM local_gpu_allocations")}
    queue = [
        QueuedJob(row[0], row[1], row[2], row[3], row[4], row[5], row[6])
        for row in conn.execute("SELECT job_id, gpus, seq, enqueued_at, priority, gpu_memory_gb, accelerator "
                                "FROM local_queue ORDER BY seq")
    ]
    return used, queue


def promote(store: JobStore, gpu_ids: Sequence[int]) -> list[tuple[str, list[int]]]:
    """Allocate free GPUs among ``gpu_ids`` to queued jobs chosen by the policy; returns the picks."""
    with store.connect() as conn:  # cheap read first: most calls have nothing to do
        used, queue = _state(conn)
    if not queue or not set(gpu_ids) - used:
        return []
    with store.transaction() as conn:
        used, queue = _state(conn)
        free = [g for g in gpu_ids if g not in used]
        picks = queue_policy(queue, free) if queue and free else []
        now = time.time()
        for job_id, gpus in picks:
            if not set(gpus) <= set(free):
                raise RuntimeError(f"queue policy handed out GPUs {gpus} that are not free ({free})")
            free = [g for g in free if g not in gpus]
            conn.executemany(
                "INSERT INTO local_gpu_allocations (gpu, job_id, allocated_at) VALUES (?, ?, ?)",
                [(gpu, job_id, now) for gpu in gpus],
            )
            conn.execute("DELETE FROM local_queue WHERE job_id = ?", (job_id,))
    return picks


def allocation(store: JobStore, job_id: str) -> list[int] | None:
    """The GPUs allocated to ``job_id`` (sorted), or ``None`` while it has none."""
    with store.connect() as conn:
        rows = conn.execute("SELECT gpu FROM local_gpu_allocations WHERE job_id = ? ORDER BY gpu", (job_id,))
        gpus = [row[0] for row in rows]
    return gpus or None


def queue_position(store: JobStore, job_id: str) -> int | None:
    """``job_id``'s place in the order the scheduler considers the queue now (1 = next: highest
    effective priority, then arrival); ``None`` when ``job_id`` is not queued."""
    from cloudbridge.planner.scheduler import queue_order

    with store.connect() as conn:
        _, queue = _state(conn)
    order = [j.id for j in queue_order(queue, time.time())]
    return order.index(job_id) + 1 if job_id in order else None
