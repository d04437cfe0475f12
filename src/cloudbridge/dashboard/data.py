"""What the dashboard shows, read without any web framework: paged jobs, costs, spend, GPUs, endpoints.

Jobs come straight from the job store with SQL paging (``LIMIT``/``OFFSET`` and a ``COUNT``), so a
page costs the same with ten jobs or ten thousand. Costs are estimates: a job's price per hour
(``extra.price_per_hour``) times how long it ran, else the estimate recorded at submit.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from cloudbridge.records import Job, JobState

__all__ = ["JobPage", "endpoints", "job_cost", "local_gpus", "page_of_jobs", "spend"]

PAGE_SIZE = 50
STATES = [s.value for s in JobState]


@dataclass
class JobPage:
    """One page of jobs and how many matched the filters in all."""

    jobs: list[Job]
    total: int
    page: int
    pages: int


def _store() -> Any:
    from cloudbridge.jobstore.store import JobStore

    return JobStore.default()


def _where(provider: str | None, state: str | None, search: str | None) -> tuple[str, list[Any]]:
    sql, args = " WHERE 1 = 1", []
    if provider:
        sql += " AND provider = ?"
        args.append(provider)
    if state:
        sql += " AND state = ?"
        args.append(state)
    if search:
        like = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        sql += " AND (id LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\' OR reason LIKE ? ESCAPE '\\')"
        args += [like, like, like]
    return sql, args


def page_of_jobs(*, provider: str | None = None, state: str | None = None, search: str | None = None,
                 page: int = 1, size: int = PAGE_SIZE) -> JobPage:
    """Jobs newest first, filtered, one page of ``size``; running local jobs are checked for liveness."""
    from cloudbridge.jobstore.store import _row_to_job

    where, args = _where(provider, state, search)
    store = _store()
    with store.connect() as conn:
        total = conn.execute(f"SELECT COUNT(*) FROM jobs{where}", args).fetchone()[0]
        pages = max(1, -(-total // size))
        page = min(max(1, page), pages)
        rows = conn.execute(f"SELECT * FROM jobs{where} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                            [*args, size, (page - 1) * size]).fetchall()
    jobs = [_row_to_job(row) for row in rows]
    for index, job in enumerate(jobs):
        if job.provider == "local" and not job.state.is_terminal:
            jobs[index] = _fresh_local(job)
    return JobPage(jobs, total, page, pages)


def _fresh_local(job: Job) -> Job:
    """The local backend's judgement of a running job (a dead supervisor shows as FAILED)."""
    try:
        from cloudbridge.backends import get_provider

        return get_provider("local").compute.get(job.id)
    except Exception:  # noqa: BLE001 - the list must render even if one record is odd
        return job


def job_cost(job: Job, now: float | None = None) -> float | None:
    """Estimated USD: price per hour x time run (so far), else the estimate made at submit."""
    price = job.extra.get("price_per_hour")
    if isinstance(price, (int, float)) and price > 0 and job.started_at:
        end = job.ended_at or (now or time.time())
        return price * max(0.0, end - job.started_at) / 3600
    estimate = job.extra.get("estimated_cost")
    return float(estimate) if isinstance(estimate, (int, float)) else None


def spend(days: int = 30, now: float | None = None) -> dict[str, Any]:
    """Estimated spend per provider per day (UTC) over the last ``days`` days."""
    now = now or time.time()
    since = now - days * 86400
    table: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    with _store().connect() as conn:
        rows = conn.execute("SELECT id, provider, name, state, created_at, started_at, ended_at, extra FROM jobs "
                            "WHERE created_at >= ?", (since,)).fetchall()
    for row in rows:
        job = Job(id=row["id"], provider=row["provider"], name=row["name"], state=JobState(row["state"]),
                  created_at=row["created_at"], started_at=row["started_at"], ended_at=row["ended_at"],
                  extra=json.loads(row["extra"]))
        cost = job_cost(job, now)
        if cost:
            day = time.strftime("%Y-%m-%d", time.gmtime(job.started_at or job.created_at or now))
            table[day][job.provider] += cost
    providers = sorted({p for per_day in table.values() for p in per_day})
    days_sorted = sorted(table, reverse=True)
    totals = {p: sum(table[d].get(p, 0.0) for d in table) for p in providers}
    return {"providers": providers, "days": [(d, dict(table[d])) for d in days_sorted], "totals": totals}


def local_gpus() -> dict[str, Any]:
    """This machine's GPUs (with utilisation and memory when NVML answers), who holds which, and the queue."""
    from cloudbridge.gpus import machine_info

    info = machine_info(None)
    store = _store()
    with store.connect() as conn:
        held = {row["gpu"]: (row["job_id"], row["allocated_at"])
                for row in conn.execute("SELECT gpu, job_id, allocated_at FROM local_gpu_allocations")}
        queue = [dict(row) for row in conn.execute(
            "SELECT job_id, gpus, priority, accelerator, enqueued_at FROM local_queue ORDER BY priority DESC, seq")]
    usage = _nvml_usage()
    gpus = []
    for gpu in info.gpus:
        holder = held.get(gpu.index)
        util, used_mb = usage.get(gpu.index, (None, None))
        gpus.append({"index": gpu.index, "name": gpu.name, "memory_mb": gpu.memory_mb, "utilization": util,
                     "memory_used_mb": used_mb, "job": holder[0] if holder else None,
                     "since": holder[1] if holder else None})
    return {"source": info.gpu_source, "cpus": info.cpus, "memory_gb": info.memory_gb, "gpus": gpus, "queue": queue}


def _nvml_usage() -> dict[int, tuple[int, int]]:
    """``index -> (utilisation %, memory used MB)`` from NVML; empty without the library or a driver."""
    try:
        import pynvml  # nvidia-ml-py, the ``gpu`` extra
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - NVMLError_LibraryNotFound and friends: no driver here
        return {}
    try:
        usage = {}
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            util = pynvml.nvmlDeviceGetUtilizationRates(handle).gpu
            used = pynvml.nvmlDeviceGetMemoryInfo(handle).used // (1024 * 1024)
            usage[index] = (int(util), int(used))
        return usage
    except Exception:  # noqa: BLE001 - a GPU that stops answering shows without usage
        return {}
    finally:
        pynvml.nvmlShutdown()


def endpoints() -> list[dict[str, Any]]:
    """Endpoints of every installed provider that deploys (a provider that fails is reported, not fatal)."""
    from cloudbridge.backends import get_provider
    from cloudbridge.plugins import provider_infos

    out: list[dict[str, Any]] = []
    for name, info in provider_infos().items():
        if "deploy" not in info.capabilities:
            continue
        try:
            listed = get_provider(name).deploy.list()
        except Exception as exc:  # noqa: BLE001 - one provider's failure must not hide the others
            out.append({"provider": name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        for endpoint in listed:
            row = endpoint.to_dict()
            row["stats"] = _endpoint_stats(endpoint.url) if endpoint.url else None
            out.append(row)
    return out


def _endpoint_stats(url: str) -> dict[str, Any] | None:
    """The serving process's own counters (``GET /stats``), or ``None`` when it has none."""
    import urllib.request

    try:
        with urllib.request.urlopen(url.rstrip("/") + "/stats", timeout=1) as reply:
            data = json.loads(reply.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
