"""``python -m cloudbridge.backends.local.supervisor JOB_ID``: runs one local job to its end.

``LocalCompute.submit`` records the job, then starts this supervisor fully detached (new session,
no terminal, not a child of the CLI), so the job survives the CLI exiting and the terminal
closing. The supervisor:

1. waits in the GPU queue when the job asks for GPUs (promoting queued jobs on every poll; see
   :mod:`~cloudbridge.backends.local.compute_queue`), failing it after ``resources.start_timeout``;
2. makes the job folder, stages inputs and checkpoints, and starts ``run`` in the job's own copy of
   the workdir package (``<job dir>/code/``, made at submit) in its own process group -- ``bash -c
   RUN``, or ``cloudbridge-launch -- RUN`` for ``accelerate``/``torchrun``;
3. heartbeats, and stops the whole process group (SIGTERM, SIGKILL after ``kill_grace``) on
   cancel, ``max_runtime`` or when the elapsed cost reaches ``max_cost``;
4. copies outputs (also after a failure), records state, reason and metrics and frees its GPUs in
   one transaction, fires the job event and lets the next queued job start.

The job's real ``env`` values reach it through ``_CB_JOB_ENV`` in its own environment -- never
through a file or the database, which hold the redacted spec.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from cloudbridge.backends.local import compute_queue as queue
from cloudbridge.backends.local import compute_runs as runs
from cloudbridge.backends.local.compute_paths import (
    RANK_TAGS_VAR,
    InputDownloadError,
    JobPaths,
    copy_outputs,
    job_environment,
    read_metrics,
    stage_inputs,
    sync_checkpoints,
)
from cloudbridge.backends.local.compute_process import group_alive, kill_group, process_start_time, signal_group
from cloudbridge.backends.local.compute_reasons import (
    BUDGET_EXCEEDED,
    CANCELLED_BY_USER,
    LOG_PREFIX,
    classify_exit,
    fmt_duration,
    oom_kill_count,
    queued_timeout_reason,
    runtime_timeout_reason,
    tail_lines,
)
from cloudbridge.backends.local.logdedup import DEDUP_VAR
from cloudbridge.backends.local.logpump import LogPump, record_arrival
from cloudbridge.backends.local.settings import LocalSettings
from cloudbridge.gpus import machine_info
from cloudbridge.jobstore.events import emit
from cloudbridge.jobstore.store import JobStore
from cloudbridge.records import JobState
from cloudbridge.runline import LAUNCH_VAR
from cloudbridge.runtime.launch import free_port, launch_prefix
from cloudbridge.specs import JobSpec

JOB_ENV = "_CB_JOB_ENV"
SETTINGS_ENV = "_CB_LOCAL_SETTINGS"
ACTIVE = (JobState.PENDING, JobState.STARTING, JobState.RUNNING)
PUMP_DRAIN_SECONDS = 10.0  # how long the end waits for output still in the pipe (a setsid grandchild may hold it)
log = logging.getLogger("cloudbridge.supervisor")


class Supervisor:
    """Drives one job from PENDING to a terminal state."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.store = JobStore.default()
        self.settings = LocalSettings(**json.loads(os.environ.get(SETTINGS_ENV) or "{}"))
        job = self.store.get(job_id)
        data = self.store.spec(job_id) or {}
        data["env"] = json.loads(os.environ.get(JOB_ENV) or "{}")  # the real values, not the redacted ones
        self.spec = JobSpec.model_validate(data)
        self.created_at = job.created_at or time.time()
        self.paths = JobPaths(Path(job.extra["job_dir"]))
        self.gpu_ids = [g.index for g in machine_info(self.settings.gpu_indices).gpus]
        self.stop_signal: int | None = None
        self.child: subprocess.Popen[bytes] | None = None
        self.pump: LogPump | None = None
        self.cause: str | None = None
        self.oom_before: int | None = None  # the cgroup's oom_kill counter when the command started
        self.started = 0.0
        self.next_beat = 0.0

    # ---- helpers ----------------------------------------------------------------------------
    def say(self, message: str) -> None:
        """Append a ``[cloudbridge]`` line to the job log (the command appends to the same file)."""
        with open(self.paths.log, "ab", buffering=0) as handle:
            handle.write(f"{LOG_PREFIX}{message}\n".encode())
            record_arrival(self.paths.log, handle.tell())

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.stop_signal = signum

    def _cancel_flag(self) -> bool:
        now = time.monotonic()
        if now >= self.next_beat:
            self.next_beat = now + self.settings.heartbeat_interval
            return runs.heartbeat(self.store, self.job_id)
        return runs.cancel_requested(self.store, self.job_id)

    def _end(self, state: JobState, reason: str | None, detail: str | None, **fields: Any) -> bool:
        if detail:  # the last log lines may print the job's own secrets: hide those exact values too
            from cloudbridge.jobstore.redact import redact_text, secret_values

            detail = redact_text(detail, secret_values(self.spec.env))
        if not self.store.get(self.job_id).state.is_terminal:
            # the last log line is written before the state: whoever sees the end also sees this line
            self.say(f"job {state.value}" + (f": {reason}" if reason else ""))
        result = self.store.transition(
            self.job_id, state, expect=ACTIVE, reason=reason, detail=detail,
            also=lambda conn: queue.release(conn, self.job_id), **fields,
        )
        if result is not None:
            emit(result[0], result[1])
        queue.promote(self.store, self.gpu_ids)
        return result is not None

    def _cancel_reason(self) -> str:
        if self.stop_signal is not None:
            return f"cancelled: the supervisor received {signal.Signals(self.stop_signal).name}"
        return CANCELLED_BY_USER

    # ---- stages -----------------------------------------------------------------------------
    def wait_for_gpus(self) -> list[int] | None:
        """The GPUs allocated to the job (``[]`` for CPU jobs); ``None`` when it ended while queued."""
        need = self.spec.resources.accelerator_count
        if need == 0:
            return []
        timeout = self.spec.resources.start_timeout_seconds
        announced = False
        while True:
            queue.promote(self.store, self.gpu_ids)
            gpus = queue.allocation(self.store, self.job_id)
            if gpus:
                return gpus
            job = self.store.get(self.job_id)
            if job.state.is_terminal:
                return None
            if self._cancel_flag() or self.stop_signal is not None:
                self._end(JobState.CANCELLED, self._cancel_reason(), "cancelled while waiting for GPUs")
                return None
            waited = time.time() - self.created_at
            if timeout is not None and waited >= timeout:
                self._end(
                    JobState.FAILED, queued_timeout_reason(timeout),
                    f"waited {fmt_duration(waited)} for {need} GPU(s) of {len(self.gpu_ids)}; they stayed busy",
                )
                return None
            if not announced:
                self.say(f"waiting for {need} GPU(s) (position {queue.queue_position(self.store, self.job_id)})")
                announced = True
            time.sleep(self.settings.poll_interval)

    def start(self, gpus: list[int]) -> bool:
        """Stage the job and start its command; False when it ended before running."""
        result = self.store.transition(self.job_id, JobState.STARTING, expect=[JobState.PENDING],
                                       extra={"gpus": gpus})
        if result is None:
            return False
        emit(result[0], result[1])
        for folder in (self.paths.output, self.paths.model, self.paths.checkpoints(self.spec)):
            folder.mkdir(parents=True, exist_ok=True)
        for name in self.spec.outputs:
            self.paths.output_channel(name).mkdir(parents=True, exist_ok=True)
        try:
            inputs = stage_inputs(self.spec, self.paths, self.say)
            sync_checkpoints(self.spec, self.paths, download=True)
        except Exception as exc:  # noqa: BLE001 - any storage failure fails the job with its cause
            detail = str(exc) if isinstance(exc, InputDownloadError) else f"{type(exc).__name__}: {exc}"
            self._end(JobState.FAILED, "input download failed", detail)
            return False
        if self._cancel_flag() or self.stop_signal is not None:
            self._end(JobState.CANCELLED, self._cancel_reason(), "cancelled before the command started")
            return False
        env = job_environment(os.environ, self.spec, job_id=self.job_id, paths=self.paths, input_dirs=inputs,
                              gpu_ids=gpus, master_port=free_port())
        env[LAUNCH_VAR] = launch_prefix()  # the run line means what cloudbridge.runline says, as in the clouds
        if self.spec.distribution == "none":
            argv = ["/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh", "-c", self.spec.run]
        else:
            argv = [sys.executable, "-m", "cloudbridge.runtime.launch", "--", self.spec.run]
        cwd = str(self.paths.code if self.spec.workdir else self.paths.root)  # the job's own copy of its code
        self.say(f"running in {cwd}: {self.spec.run}" + (f" (GPUs {gpus})" if gpus else ""))
        self.oom_before = oom_kill_count()
        # the output goes through a pipe: the pump strips terminal escapes before job.log (see logpump)
        read_end, write_end = os.pipe()
        try:
            try:
                self.child = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=write_end,
                                              stderr=subprocess.STDOUT, start_new_session=True)
            finally:
                os.close(write_end)
        except OSError as exc:
            os.close(read_end)
            self._end(JobState.FAILED, "could not start the command", f"{type(exc).__name__}: {exc}")
            return False
        dedup = env.get(RANK_TAGS_VAR) == "1" and env.get(DEDUP_VAR) != "0"  # ranks' repeated warnings
        self.pump = LogPump(read_end, str(self.paths.log), dedup=dedup)
        self.pump.start()
        self.started = time.monotonic()
        pgid = self.child.pid  # start_new_session: the child leads its own group
        runs.set_run(self.store, self.job_id, pgid=pgid, child_pid=self.child.pid)
        attempt = {"attempt": 1, "started_at": time.time(), "gpus": gpus}
        # the leader's start time: another process may later signal this group only while it is still ours
        result = self.store.transition(self.job_id, JobState.RUNNING, expect=[JobState.STARTING],
                                       started_at=attempt["started_at"], native_id=f"pgid:{pgid}",
                                       attempts=[attempt], extra={"pgid_start": process_start_time(pgid)})
        if result is not None:
            emit(result[0], result[1])
        return True

    def _should_stop(self, elapsed: float) -> str | None:
        res = self.spec.resources
        if self._cancel_flag() or self.stop_signal is not None:
            return "cancel"
        if res.max_runtime_seconds is not None and elapsed >= res.max_runtime_seconds:
            return "timeout"
        price = self.settings.price_per_hour
        if res.max_cost is not None and price > 0 and price * elapsed / 3600 >= res.max_cost:
            return "budget"
        return None

    def monitor(self) -> int:
        """Watch the command until it exits; stop it on cancel, timeout or budget. Returns its exit code."""
        assert self.child is not None
        pgid = self.child.pid
        term_sent: float | None = None
        next_sync = time.monotonic() + self.settings.checkpoint_sync_interval
        while True:
            code = self.child.poll()
            if code is not None:
                break
            now = time.monotonic()
            if self.cause is None:
                self.cause = self._should_stop(now - self.started)
                if self.cause is not None:
                    self.say(f"stopping the job ({self.cause}): SIGTERM to process group {pgid}")
                    signal_group(pgid, signal.SIGTERM)
                    term_sent = now
            else:
                self._cancel_flag()  # keep the heartbeat going while the job shuts down
                if term_sent is not None and now - term_sent >= self.settings.kill_grace:
                    self.say(f"still running {self.settings.kill_grace:g}s after SIGTERM: SIGKILL")
                    signal_group(pgid, signal.SIGKILL)
                    term_sent = None
            if now >= next_sync:
                next_sync = now + self.settings.checkpoint_sync_interval
                try:
                    sync_checkpoints(self.spec, self.paths, download=False)
                except Exception as exc:  # noqa: BLE001 - a failed periodic sync is retried at the end
                    self.say(f"checkpoint upload failed (will retry at the end): {exc}")
            time.sleep(self.settings.poll_interval)
        if group_alive(pgid):  # the command ended but left processes behind: stop them too
            how = kill_group(pgid, self.settings.kill_grace if self.cause else min(self.settings.kill_grace, 5.0))
            if how:
                self.say(f"the command exited but left processes in its group; stopped them with {how}")
        if self.pump is not None:  # the rest of the output reaches job.log before the final lines
            self.pump.join(timeout=PUMP_DRAIN_SECONDS)
        return code

    def finish(self, code: int) -> None:
        """Copy outputs, then record the final state, reason and metrics and free the GPUs."""
        elapsed = time.monotonic() - self.started
        res = self.spec.resources
        tail = tail_lines(self.paths.log)
        tail_text = ("; last log lines:\n" + "\n".join(tail)) if tail else ""
        state, reason, detail = JobState.SUCCEEDED, None, None
        if self.cause == "cancel":
            state, reason, detail = JobState.CANCELLED, self._cancel_reason(), f"stopped after {fmt_duration(elapsed)}"
        elif self.cause == "timeout":
            state, reason = JobState.FAILED, runtime_timeout_reason(res.max_runtime_seconds or 0)
            detail = f"the command ran for {fmt_duration(elapsed)} and was stopped{tail_text}"
        elif self.cause == "budget":
            price = self.settings.price_per_hour
            state, reason = JobState.FAILED, BUDGET_EXCEEDED
            detail = (f"elapsed cost ${price * elapsed / 3600:.4f} reached max_cost ${res.max_cost:g} "
                      f"at ${price:g}/h after {fmt_duration(elapsed)}")
        elif code != 0:
            after, before = oom_kill_count(), self.oom_before
            oom = None if after is None or before is None else after > before
            state = JobState.FAILED
            reason, detail = classify_exit(code, tail, oom_killed=oom)
        errors = copy_outputs(self.spec, self.paths, self.say)
        try:
            sync_checkpoints(self.spec, self.paths, download=False)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"checkpoints -> {self.spec.checkpoints}: {type(exc).__name__}: {exc}")
        if errors:
            message = "; ".join(errors)
            if state == JobState.SUCCEEDED:
                state, reason, detail = JobState.FAILED, "output upload failed", message
            else:
                detail = f"{detail}; also: {message}"
        ended = time.time()
        job = self.store.get(self.job_id)
        attempts = [{**a, "ended_at": ended, "state": state.value, "exit_code": code} for a in job.attempts]
        self._end(state, reason, detail, exit_code=code, metrics=read_metrics(self.paths), ended_at=ended,
                  attempts=attempts)

    def run(self) -> None:
        """The whole life of the job; never leaves it in a non-terminal state when it exits normally."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            gpus = self.wait_for_gpus()
            if gpus is None or not self.start(gpus):
                return
            self.finish(self.monitor())
        except BaseException as exc:
            log.error("supervisor error:\n%s", traceback.format_exc())
            if self.child is not None and self.child.poll() is None:
                kill_group(self.child.pid, min(self.settings.kill_grace, 5.0))
            self._end(JobState.FAILED, "supervisor error", f"{type(exc).__name__}: {exc}")
            if not isinstance(exc, Exception):
                raise


def main(argv: list[str] | None = None) -> int:
    """Entry point: supervise the job named on the command line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m cloudbridge.backends.local.supervisor JOB_ID", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    job_id = args[0]
    store = JobStore.default()
    runs.set_run(store, job_id, heartbeat=time.time())
    try:
        supervisor = Supervisor(job_id)
    except Exception as exc:  # noqa: BLE001 - record why the job could not even be prepared
        log.error("cannot prepare job %s:\n%s", job_id, traceback.format_exc())
        result = store.transition(job_id, JobState.FAILED, expect=ACTIVE, reason="supervisor error",
                                  detail=f"{type(exc).__name__}: {exc}",
                                  also=lambda conn: queue.release(conn, job_id))
        if result is not None:
            emit(result[0], result[1])
        return 1
    supervisor.run()
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through LocalCompute in tests
    sys.exit(main())
