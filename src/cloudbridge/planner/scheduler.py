"""The local GPU queue's policy as one pure function: :func:`pick_next`.

Policy:

* **priorities with aging** -- a job's effective priority is its priority plus
  ``aging_per_hour`` points for every hour it has waited, so a low-priority job eventually
  outranks newer high-priority ones;
* **best fit by GPU memory** -- a job gets the free GPUs with the *least* memory that still meets
  its need, keeping big GPUs for jobs that need them;
* **backfill without starvation** -- when the head of the queue (highest effective priority) does
  not fit, a smaller job behind it may start on the free GPUs, but only until the head has waited
  ``reserve_after`` seconds; after that nothing else starts until the head fits (its GPUs are
  reserved as running jobs finish).

Together: every job eventually becomes the head (aging) and the head eventually runs (reservation),
provided running jobs end -- which ``max_runtime`` guarantees.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cloudbridge.errors import ResourceUnavailable
from cloudbridge.planner.accelerators import from_device_name, satisfies

__all__ = ["DEFAULT_POLICY", "Decision", "FreeGPU", "GpuRequest", "QueuedJob", "SchedulerPolicy", "match_request",
           "pick_next", "queue_order"]


@dataclass(frozen=True)
class QueuedJob:
    """A waiting job: GPUs wanted, since when, its priority and optional GPU memory/type needs."""

    id: str
    gpus: int
    queued_at: float
    priority: int = 0
    gpu_memory_gb: float = 0.0
    accelerator: str | None = None


@dataclass(frozen=True)
class FreeGPU:
    """A free GPU: its index, usable memory (GB) and canonical accelerator name."""

    index: int
    memory_gb: float = math.inf
    accelerator: str | None = None


@dataclass(frozen=True)
class SchedulerPolicy:
    """Tuning of :func:`pick_next`."""

    aging_per_hour: float = 6.0
    reserve_after: float = 1800.0


DEFAULT_POLICY = SchedulerPolicy()


@dataclass(frozen=True)
class Decision:
    """What to start now: ``job_id`` on ``gpus`` (``None``: nothing can start; ``reason`` says why).

    ``order`` is the queue by effective priority (what ``cloudbridge queue`` shows).
    """

    job_id: str | None
    gpus: tuple[int, ...]
    reason: str
    order: tuple[str, ...] = ()


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(obj, Mapping) and name in obj:
            return obj[name]
        if not isinstance(obj, Mapping) and hasattr(obj, name):
            return getattr(obj, name)
    return default


def as_queued_job(obj: Any) -> QueuedJob:
    """Coerce a ``QueuedJob``, a mapping or a record with ``id``/``job_id``, ``gpus``,
    ``queued_at``/``enqueued_at``, ``priority``, ``gpu_memory_gb`` and ``accelerator``."""
    if isinstance(obj, QueuedJob):
        return obj
    return QueuedJob(
        id=str(_get(obj, "id", "job_id")),
        gpus=int(_get(obj, "gpus", default=0) or 0),
        queued_at=float(_get(obj, "queued_at", "enqueued_at", default=0.0) or 0.0),
        priority=int(_get(obj, "priority", default=0) or 0),
        gpu_memory_gb=float(_get(obj, "gpu_memory_gb", default=0.0) or 0.0),
        accelerator=_get(obj, "accelerator"),
    )


def as_free_gpu(obj: Any) -> FreeGPU:
    """Coerce a ``FreeGPU``, an index (memory unknown), or a record with ``index`` and
    ``memory_gb``/``memory_mb`` and ``name``/``accelerator`` (e.g. the local probe's ``GpuInfo``)."""
    if isinstance(obj, FreeGPU):
        return obj
    if isinstance(obj, int):
        return FreeGPU(obj)
    memory = _get(obj, "memory_gb", "free_memory_gb")
    if memory is None and _get(obj, "memory_mb") is not None:
        memory = float(_get(obj, "memory_mb")) / 1024
    accel = _get(obj, "accelerator")
    name = _get(obj, "name")
    if accel is None and name:
        accel = from_device_name(str(name), memory)
    return FreeGPU(int(_get(obj, "index")), float(memory) if memory is not None else math.inf, accel)


def effective_priority(job: QueuedJob, now: float, policy: SchedulerPolicy = DEFAULT_POLICY) -> float:
    """``priority + aging_per_hour * hours waited``."""
    return job.priority + policy.aging_per_hour * max(0.0, now - job.queued_at) / 3600


def queue_order(queued_jobs: Iterable[Any], now: float, policy: SchedulerPolicy = DEFAULT_POLICY) -> list[QueuedJob]:
    """The queue by effective priority (then arrival, then id)."""
    jobs = [as_queued_job(j) for j in queued_jobs]
    return sorted(jobs, key=lambda j: (-effective_priority(j, now, policy), j.queued_at, j.id))


def best_fit(job: QueuedJob, free: list[FreeGPU]) -> tuple[int, ...] | None:
    """The ``job.gpus`` free GPUs with the least memory that each meet the job's need, or ``None``."""
    usable = [g for g in free if g.memory_gb + 1e-9 >= job.gpu_memory_gb
              and (job.accelerator is None or satisfies(g.accelerator, job.accelerator))]
    if len(usable) < job.gpus:
        return None
    usable.sort(key=lambda g: (g.memory_gb, g.index))
    return tuple(sorted(g.index for g in usable[: job.gpus]))


@dataclass(frozen=True)
class GpuRequest:
    """What a job's GPUs must be on this machine: ``accelerator`` (canonical; ``None`` = any GPU) and
    ``gpu_memory_gb`` each (0 = any); ``warnings`` for the job log."""

    accelerator: str | None
    gpu_memory_gb: float
    warnings: tuple[str, ...] = ()


def match_request(job: str, name: str | None, count: int, min_memory_gb: float | None,
                  gpus: Iterable[Any]) -> GpuRequest:
    """Resolve a job's ``resources.accelerators`` / ``gpu_memory`` against this machine's GPUs.

    The type is enforced when some GPU here has it (``A100`` accepts the A100 family, ``A100-80GB``
    only that part). A known GPU model that no GPU here has -- or too few GPUs of that type and
    memory -- can never start: :class:`ResourceUnavailable`, naming what the machine has. A name
    that is no known model and matches no GPU here (``GPU``, ``any``) accepts any GPU, with a warning.
    """
    from cloudbridge.planner.accelerators import (
        KNOWN_ACCELERATORS,
        UnknownAccelerator,
        canonical_spelling,
        normalize_accelerator,
    )

    free = [as_free_gpu(g) for g in gpus]
    have = ", ".join(f"{g.index}: {g.accelerator or '?'} {g.memory_gb:g} GB" for g in free) or "no GPU"
    minimum = float(min_memory_gb or 0.0)
    accelerator, warnings = None, []
    if name:
        local = {g.accelerator for g in free if g.accelerator}
        try:
            wanted, known = normalize_accelerator(name, set(KNOWN_ACCELERATORS) | local), True
        except UnknownAccelerator:
            wanted, known = canonical_spelling(name), False
        if any(satisfies(g.accelerator, wanted) for g in free):
            accelerator = wanted
        elif known:
            raise ResourceUnavailable(
                f"job {job!r} asks for {wanted} GPUs (resources.accelerators) but this machine has none ({have}), "
                "so it could never start", hint="ask for a GPU type this machine has, or run it on a cloud provider")
        else:
            warnings.append(f"asked for {name} GPUs; no GPU here is called that, so any GPU is used ({have})")
    request = QueuedJob(job, count, 0.0, gpu_memory_gb=minimum, accelerator=accelerator)
    if count and best_fit(request, free) is None:
        kind = f"{accelerator} " if accelerator else ""
        memory = f" with at least {minimum:g} GB each" if minimum else ""
        suitable = sum(1 for g in free if g.memory_gb + 1e-9 >= minimum
                       and (accelerator is None or satisfies(g.accelerator, accelerator)))
        raise ResourceUnavailable(
            f"job {job!r} asks for {count} {kind}GPU(s){memory} but this machine has {suitable} such ({have}), "
            "so it could never start", hint="lower the count or resources.gpu_memory, or run it on a cloud provider")
    return GpuRequest(accelerator, minimum, tuple(warnings))


def pick_next(queued_jobs: Iterable[Any], free_gpus: Iterable[Any], now: float, *,
              total_gpus: int | None = None, policy: SchedulerPolicy = DEFAULT_POLICY) -> Decision:
    """The job to start now and the GPUs to give it, or ``Decision(None, ...)`` with the reason.

    ``queued_jobs``/``free_gpus`` accept the dataclasses here or plain records (see
    :func:`as_queued_job`, :func:`as_free_gpu`). Jobs needing more than ``total_gpus`` (when
    given) can never run here and are skipped, so they cannot block the queue.
    """
    order = queue_order(queued_jobs, now, policy)
    free = [as_free_gpu(g) for g in free_gpus]
    ids = tuple(j.id for j in order)
    if len({g.index for g in free}) != len(free):
        raise ValueError("free_gpus lists a GPU index twice")
    runnable = [j for j in order if total_gpus is None or j.gpus <= total_gpus]
    if not runnable:
        return Decision(None, (), "queue is empty" if not order else "no queued job can ever fit this machine", ids)
    head = runnable[0]
    head_gpus = best_fit(head, free) if head.gpus else ()
    if head_gpus is not None:
        return Decision(head.id, head_gpus, "highest effective priority", ids)
    reserving = now - head.queued_at >= policy.reserve_after
    for job in runnable[1:]:
        if job.gpus == 0:
            return Decision(job.id, (), f"needs no GPU; {head.id} waits for GPUs", ids)
        if reserving:
            continue
        chosen = best_fit(job, free)
        if chosen is not None:
            return Decision(job.id, chosen, f"backfill: {head.id} does not fit the free GPUs yet", ids)
    if reserving:
        return Decision(None, (), f"GPUs are held for {head.id} (waiting since {now - head.queued_at:.0f}s)", ids)
    return Decision(None, (), "no queued job fits the free GPUs", ids)


def local_queue_policy(queue: Iterable[Any], free_gpus: Iterable[int], now: float | None = None, *,
                       policy: SchedulerPolicy = DEFAULT_POLICY) -> list[tuple[str, list[int]]]:
    """The local backend's queue policy (``compute_queue.Policy``): every job to start now.

    Calls :func:`pick_next` until nothing more can start, handing out GPUs as it goes. GPU memory
    and names come from the local probe (so best fit by memory works on mixed machines); queue
    entries are records with ``job_id``, ``gpus``, ``enqueued_at``, ``priority``, ``gpu_memory_gb``
    and ``accelerator`` (:class:`cloudbridge.backends.local.compute_queue.QueuedJob`).
    """
    import time

    from cloudbridge.gpus import probe_gpus

    now = time.time() if now is None else now
    known = {g.index: g for g in probe_gpus()[0]}
    free = [as_free_gpu(known[i]) if i in known else FreeGPU(i) for i in free_gpus]
    everything = [as_free_gpu(g) for g in known.values()]
    # A job no set of this machine's GPUs could ever satisfy (type, memory, count) must not block others.
    waiting = [j for j in (as_queued_job(q) for q in queue) if not known or best_fit(j, everything) is not None]
    total = len(known) or None
    picks: list[tuple[str, list[int]]] = []
    while waiting:
        decision = pick_next(waiting, free, now, total_gpus=total, policy=policy)
        if decision.job_id is None:
            break
        picks.append((decision.job_id, list(decision.gpus)))
        taken = set(decision.gpus)
        free = [g for g in free if g.index not in taken]
        waiting = [j for j in waiting if j.id != decision.job_id]
    return picks
