"""Local compute: jobs on this machine, each under its own detached supervisor.

See :mod:`cloudbridge.backends.local.supervisor` for a job's life and
:mod:`cloudbridge.backends.local.compute_queue` for GPU allocation. This class submits, reads,
lists, cancels and tails jobs, and judges supervisors honestly: a job whose supervisor process is
gone (killed, crashed, machine rebooted) while the record still says it runs is marked ``FAILED``
with reason ``supervisor died`` on the next ``get``/``list``/``wait``, its leftover processes are
killed and its GPUs freed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from cloudbridge.backends.local import compute_queue as queue
from cloudbridge.backends.local import compute_runs as runs
from cloudbridge.backends.local.compute_code import materialise, scan_code
from cloudbridge.backends.local.compute_paths import JobPaths, resolve_spec
from cloudbridge.backends.local.compute_process import (
    group_alive,
    group_is,
    launch_detached,
    pid_alive,
    signal_group,
)
from cloudbridge.backends.local.compute_reasons import (
    CANCELLED_BY_USER,
    LOG_PREFIX,
    SUPERVISOR_DIED,
    fmt_duration,
    tail_lines,
)
from cloudbridge.backends.local.logpump import since_offset
from cloudbridge.errors import BudgetExceeded, ConflictError, InvalidSpec, NotFound, ResourceUnavailable, UserError
from cloudbridge.gpus import MachineInfo, machine_info
from cloudbridge.interfaces import Compute
from cloudbridge.jobstore.events import emit
from cloudbridge.jobstore.store import JobStore
from cloudbridge.records import Job, JobState
from cloudbridge.settings import private_dir, private_file

if TYPE_CHECKING:
    from cloudbridge.backends.local.settings import LocalSettings
    from cloudbridge.planner.scheduler import GpuRequest
    from cloudbridge.specs import JobSpec

__all__ = ["LocalCompute"]

ACTIVE = (JobState.PENDING, JobState.STARTING, JobState.RUNNING)
#: A job whose supervisor never registered is declared dead after this many seconds.
START_GRACE = 60.0
#: Where a process's start time cannot be read (no ``/proc``), a supervisor whose PID exists but
#: whose heartbeat is this old is taken for dead (its PID was probably recycled).
STALE_HEARTBEAT = 600.0


class LocalCompute(Compute):
    """Runs jobs on this machine (see the module docstring)."""

    poll_interval = 0.1
    #: The local backend writes the job store itself (the SDK does not re-record its jobs).
    records_jobs = True

    def __init__(self, settings: LocalSettings) -> None:
        self.settings = settings
        self.store = JobStore.default()

    # ---- submit -----------------------------------------------------------------------------
    def machine(self) -> MachineInfo:
        """This machine's resources as the settings allow them."""
        return machine_info(self.settings.gpu_indices)

    def _check_fit(self, spec: JobSpec, machine: MachineInfo) -> tuple[list[str], GpuRequest]:
        res = spec.resources
        if res.nodes > 1:
            raise ResourceUnavailable(
                f"job {spec.name!r} asks for resources.nodes: {res.nodes}, but the local provider runs on one machine",
                hint="use a cloud provider (provider: aws) for multi-node jobs, or set nodes: 1",
            )
        need, have = res.accelerator_count, len(machine.gpus)
        if need > have:
            found = ", ".join(f"{g.index}: {g.name}" for g in machine.gpus) or "no GPU"
            raise ResourceUnavailable(
                f"job {spec.name!r} asks for {need} GPU(s) (resources.accelerators: {res.accelerators!r}) but this "
                f"machine has {have} usable ({found}; probed via {machine.gpu_source}), so it could never start",
                hint="lower the count, or run it on a cloud provider (provider: aws)",
            )
        from cloudbridge.planner.scheduler import match_request

        # GPU type and memory per GPU: enforced by the queue; a request no GPU here can meet is refused now.
        request = match_request(spec.name, res.accelerator_name if need else None, need, res.min_gpu_memory_gb,
                                machine.gpus)
        warnings = list(request.warnings)
        if res.min_cpus and res.min_cpus > machine.cpus:
            warnings.append(f"asked for {res.min_cpus:g} CPUs; this machine has {machine.cpus}")
        if res.min_memory_gb and machine.memory_gb and res.min_memory_gb > machine.memory_gb:
            warnings.append(f"asked for {res.min_memory_gb:g} GB of memory; this machine has {machine.memory_gb:g}")
        return warnings, request

    def _check_budget(self, spec: JobSpec) -> tuple[list[str], float | None, float]:
        """``(warnings, estimated cost, USD/h)``; the price is :func:`cloudbridge.planner.cost.local_price`."""
        from cloudbridge.planner.cost import local_price

        res = spec.resources
        price = local_price(res, settings=self.settings)[0]
        if res.max_hourly_cost is not None and price > res.max_hourly_cost:
            raise BudgetExceeded(
                f"job {spec.name!r}: the local machine costs ${price:g}/h, above resources.max_hourly_cost "
                f"${res.max_hourly_cost:g}",
                hint="raise max_hourly_cost or lower CLOUDBRIDGE_LOCAL_PRICE_PER_HOUR",
            )
        estimate = None
        if price > 0 and res.max_runtime_seconds:
            estimate = price * res.max_runtime_seconds / 3600
            if res.max_cost is not None and estimate > res.max_cost:
                raise BudgetExceeded(
                    f"job {spec.name!r}: estimated cost ${estimate:.2f} (max_runtime "
                    f"{fmt_duration(res.max_runtime_seconds)} at ${price:g}/h) is above resources.max_cost "
                    f"${res.max_cost:g}",
                    hint="raise max_cost or shorten max_runtime",
                )
        warnings = []
        if (res.max_cost is not None or res.max_hourly_cost is not None) and price == 0:
            warnings.append(
                "the local machine has no price (0 USD/h), so max_cost/max_hourly_cost can never be reached; "
                "set CLOUDBRIDGE_LOCAL_PRICE_PER_HOUR to enforce them"
            )
        return warnings, estimate, price

    def _checked(self, spec: JobSpec) -> tuple[JobSpec, MachineInfo, list[str], GpuRequest, float | None, float]:
        """Every check submit makes before creating anything (reads only; see :meth:`validate`)."""
        resolved = resolve_spec(spec)
        if "dir" in resolved.outputs:
            raise InvalidSpec("output channel name 'dir' is reserved (CB_OUTPUT_DIR)", source=spec.source,
                              field="outputs.dir")
        machine = self.machine()
        warnings, request = self._check_fit(resolved, machine)
        budget_warnings, estimate, price = self._check_budget(resolved)
        return resolved, machine, warnings + budget_warnings, request, estimate, price

    def validate(self, spec: JobSpec) -> JobSpec:
        """Run submit's checks without creating anything (``run --dry-run``); returns the resolved spec.

        Raises what :meth:`submit` would: :class:`InvalidSpec`, :class:`ResourceUnavailable` (several
        nodes, more or other GPUs than this machine has), :class:`BudgetExceeded`.
        """
        return self._checked(spec)[0]

    def submit(self, spec: JobSpec) -> Job:
        """Check, record and start (or queue) the job; returns at once with its record.

        The workdir is packaged as on every provider (:mod:`~cloudbridge.backends.local.compute_code`)
        and copied into the job's own ``code/`` folder, where the command runs.

        Raises :class:`InvalidSpec` (missing workdir or input, a bad ignore pattern),
        :class:`UserError` (a workdir over the size limit), :class:`ResourceUnavailable` (more GPUs
        than this machine has, several nodes) or :class:`BudgetExceeded` -- before anything is
        created.
        """
        resolved, machine, warnings, request, estimate, price = self._checked(spec)
        jobs_dir = self.settings.jobs_dir()
        manifest = None
        if resolved.workdir is not None:
            from cloudbridge.settings import cloudbridge_home

            manifest = scan_code(resolved.workdir, private=[cloudbridge_home(), jobs_dir], spec=resolved)
            warnings += manifest.warnings
        need = resolved.resources.accelerator_count
        outputs_uri = resolved.outputs.get("model") or next(iter(resolved.outputs.values()), None)
        spec_data = resolved.model_dump(mode="json")
        for _ in range(20):
            job_id = f"local-{secrets.token_hex(4)}"
            paths = JobPaths(jobs_dir / job_id)
            if paths.root.exists():
                continue
            extra = {"job_dir": str(paths.root), "gpus_requested": need, "warnings": warnings,
                     "price_per_hour": price, "estimated_cost": estimate}
            if manifest is not None:
                extra["code_dir"] = str(paths.code)
                extra["package"] = {"files": manifest.file_count, "bytes": manifest.total_size,
                                    "ignored": manifest.ignored, "digest": manifest.digest}
            if resolved.source:
                extra["spec_source"] = str(Path(resolved.source).resolve())
            job = Job(id=job_id, provider="local", name=resolved.name, state=JobState.PENDING,
                      outputs_uri=outputs_uri or str(paths.output), created_at=time.time(), extra=extra)

            def also(conn: object, job_id: str = job_id) -> None:
                runs.add_run(conn, job_id)  # type: ignore[arg-type]
                if need:
                    queue.enqueue(conn, job_id, need, priority=resolved.resources.priority,  # type: ignore[arg-type]
                                  gpu_memory_gb=request.gpu_memory_gb, accelerator=request.accelerator)

            # the code is copied before the job is recorded: a failed copy leaves nothing behind
            private_dir(paths.root)  # the job's logs and code: for this user only
            private_file(paths.log)
            private_file(paths.supervisor_log)
            if manifest is not None:
                materialise(manifest, paths.code)
            try:
                self.store.insert_job(job, spec_data, also=also)
                break
            except ConflictError:
                shutil.rmtree(paths.root, ignore_errors=True)
                continue
            except BaseException:
                shutil.rmtree(paths.root, ignore_errors=True)
                raise
        else:  # pragma: no cover - 20 collisions of 32-bit random ids
            raise ConflictError("could not allocate a unique job id")
        private_dir(paths.root)
        with open(private_file(paths.log), "a", encoding="utf-8") as handle:
            for warning in warnings:
                handle.write(f"{LOG_PREFIX}warning: {warning}\n")
        emit(job, None)
        if need:
            queue.promote(self.store, [g.index for g in machine.gpus])
        env = dict(os.environ)
        env["_CB_JOB_ENV"] = json.dumps(resolved.env)
        # the supervisor's budget stop uses the price checked here (a catalog price included)
        env["_CB_LOCAL_SETTINGS"] = self.settings.model_copy(update={"price_per_hour": price}).model_dump_json()
        try:
            pid, start = launch_detached(
                [sys.executable, "-m", "cloudbridge.backends.local.supervisor", job_id],
                env=env, cwd=str(paths.root), log_path=str(paths.supervisor_log),
            )
        except OSError as exc:
            self._fail(job_id, "supervisor could not start", f"{type(exc).__name__}: {exc}")
        else:
            runs.set_run(self.store, job_id, supervisor_pid=pid, supervisor_start=start)
        return self.get(job_id)

    # ---- reading ----------------------------------------------------------------------------
    def _fail(
        self, job_id: str, reason: str, detail: str, pgid: int | None = None, pgid_start: str | None = None
    ) -> None:
        def also(conn: object) -> None:
            # orphaned job processes would hold the GPUs -- but a recorded pgid may since have been reused
            # by an unrelated process group: signal only the group whose leader is the one recorded
            if pgid and group_alive(pgid) and group_is(pgid, pgid_start):
                signal_group(pgid, signal.SIGKILL)
            queue.release(conn, job_id)  # type: ignore[arg-type]

        result = self.store.transition(job_id, JobState.FAILED, expect=ACTIVE, reason=reason, detail=detail,
                                       also=also)
        if result is not None:
            emit(result[0], result[1])
            queue.promote(self.store, [g.index for g in self.machine().gpus])

    def _check_supervisor(self, job: Job) -> None:
        run = runs.run_info(self.store, job.id)
        if run is None:
            return
        if run.supervisor_pid is None:
            if time.time() - (job.created_at or 0) < START_GRACE:
                return
            why = f"the supervisor never started within {START_GRACE:g}s"
        else:
            beat = f"; last heartbeat {time.time() - run.heartbeat:.0f}s ago" if run.heartbeat else ""
            if not pid_alive(run.supervisor_pid, run.supervisor_start):
                why = f"the supervisor (pid {run.supervisor_pid}) exited without recording a result{beat}"
            elif run.supervisor_start is None and run.heartbeat and time.time() - run.heartbeat > STALE_HEARTBEAT:
                why = f"the supervisor (pid {run.supervisor_pid}) stopped heartbeating{beat}"
            else:
                return
        paths = JobPaths(Path(job.extra.get("job_dir", "")))
        own = tail_lines(paths.supervisor_log, 5)
        log = tail_lines(paths.log)
        detail = why + "; the job's processes were stopped"
        if own:
            detail += "\nsupervisor log:\n" + "\n".join(own)
        if log:
            detail += f"\nlast {len(log)} job log lines:\n" + "\n".join(log)
        self._fail(job.id, SUPERVISOR_DIED, detail, pgid=run.pgid, pgid_start=job.extra.get("pgid_start"))

    def _own(self, job_id: str) -> Job:
        job = self.store.find(job_id)
        if job is None or job.provider != "local":
            raise NotFound(f"no local job with id {job_id!r}", hint="list jobs with: cloudbridge jobs")
        return job

    def get(self, job_id: str) -> Job:
        """The job's record, after checking that its supervisor is still alive."""
        job = self._own(job_id)
        if not job.state.is_terminal:
            self._check_supervisor(job)
            if job.state == JobState.PENDING and job.extra.get("gpus_requested"):
                queue.promote(self.store, [g.index for g in self.machine().gpus])
            job = self.store.get(job_id)
            position = queue.queue_position(self.store, job_id)
            if position is not None:
                job.extra["queue_position"] = position
            if job.state == JobState.RUNNING:  # the latest values of the series, read live
                from cloudbridge.backends.local.compute_paths import read_metrics

                job.metrics = {**job.metrics, **read_metrics(JobPaths(Path(job.extra.get("job_dir", ""))))}
        job.extra["events"] = self.store.events(job_id)
        return job.bind(self)

    def list(self) -> list[Job]:
        """Local jobs, newest first (supervisors of running jobs checked)."""
        jobs = []
        for job in self.store.list("local"):
            if not job.state.is_terminal:
                self._check_supervisor(job)
                job = self.store.get(job.id)
            jobs.append(job.bind(self))
        return jobs

    # ---- acting -----------------------------------------------------------------------------
    def cancel(self, job_id: str) -> Job:
        """Cancel the job: a queued job ends at once; a running one gets SIGTERM, then SIGKILL after
        ``kill_grace`` seconds, from its supervisor. Waits (up to the grace period plus 10 s) for it to end."""
        job = self.get(job_id)
        if job.state.is_terminal:
            return job
        result = self.store.transition(job_id, JobState.CANCELLED, expect=[JobState.PENDING],
                                       reason=CANCELLED_BY_USER, detail="cancelled before it started",
                                       also=lambda conn: queue.release(conn, job_id))
        if result is not None:
            emit(result[0], result[1])
            queue.promote(self.store, [g.index for g in self.machine().gpus])
            return self.get(job_id)
        runs.request_cancel(self.store, job_id)
        deadline = time.monotonic() + self.settings.kill_grace + 10
        while time.monotonic() < deadline:
            job = self.get(job_id)
            if job.state.is_terminal:
                break
            time.sleep(0.05)
        return job

    def logs(self, job_id: str, follow: bool = False, since: float | None = None) -> Iterator[str]:
        """Lines of ``job.log``; with ``follow`` keeps reading until the job has ended and the file is drained.

        ``since`` (unix time): only the lines that arrived then or later, by the arrival times the
        supervisor records next to the log; a job without them raises :class:`UserError`.
        """
        job = self.get(job_id)
        path = Path(job.extra["job_dir"]) / "job.log"
        start = 0
        if since is not None:
            found = since_offset(path, since)
            if found is None and path.exists():
                raise UserError(f"job {job_id}: its log has no arrival times (it ran before cloudbridge "
                                "recorded them), so it cannot be filtered by time")
            start = found or 0
        return self._tail(job, path, follow, start)

    def _tail(self, job: Job, path: Path, follow: bool, start: int = 0) -> Iterator[str]:
        position, pending = start, b""
        done = not follow or job.state.is_terminal
        next_check = time.monotonic() + 0.5
        while True:
            chunk = b""
            if path.exists():
                with path.open("rb") as handle:
                    handle.seek(position)
                    chunk = handle.read()
                position += len(chunk)
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", errors="replace").rstrip("\r")
                continue
            if done:
                if pending:
                    yield pending.decode("utf-8", errors="replace").rstrip("\r")
                return
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + 0.5
                done = self.get(job.id).state.is_terminal  # read the file once more after this
                continue
            time.sleep(0.1)
