"""The local supervisor: detached from its submitter, kills whole process groups, honest when it dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fixtures_local import local_compute, run_info, spec, wait_state, wait_until

from cloudbridge.backends.local.compute_process import group_alive, pid_alive
from cloudbridge.jobstore.store import JobStore
from cloudbridge.records import JobState


def test_job_survives_the_submitting_process_and_its_terminal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cb_home: Path
) -> None:
    local_compute(monkeypatch)  # sets the CLOUDBRIDGE_LOCAL_* env the child inherits
    gate = tmp_path / "go"
    script = textwrap.dedent(
        f"""
        import os, sys
        from cloudbridge.backends import get_provider
        from cloudbridge.specs import JobSpec
        job = get_provider("local").compute.submit(JobSpec(
            name="detached", workdir={str(tmp_path)!r},
            run="while [ ! -e {gate} ]; do sleep 0.05; done; echo survived"))
        print(job.id, os.getsid(0), flush=True)
        """
    )
    # the submitter runs in its own session, like a shell in a terminal; it exits right after submit
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          start_new_session=True, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    job_id, submitter_sid = proc.stdout.split()
    run = wait_until(lambda: (r := run_info(job_id)) and r.pgid and r)
    supervisor = run.supervisor_pid
    assert pid_alive(supervisor, run.supervisor_start), "the supervisor did not outlive the submitter"
    assert os.getsid(supervisor) != int(submitter_sid), "the supervisor shares the terminal's session"
    os.kill(supervisor, signal.SIGHUP)  # what a closing terminal would send: ignored
    try:
        os.killpg(int(submitter_sid), signal.SIGHUP)
    except ProcessLookupError:
        pass
    compute = local_compute(monkeypatch)
    wait_state(compute, job_id, JobState.RUNNING)
    gate.touch()
    job = compute.wait(job_id, 30)
    assert job.state == JobState.SUCCEEDED, (job.reason, job.detail)
    assert "survived" in list(compute.logs(job_id))
    wait_until(lambda: not pid_alive(supervisor, run.supervisor_start), 10)


def test_cancel_kills_the_whole_process_group(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch, kill_grace=1)
    pids = tmp_path / "pids"
    # a grandchild that ignores SIGTERM (needs the SIGKILL after kill_grace) and a plain one
    run = (f"bash -c 'trap \"\" TERM; while true; do sleep 0.1; done' & echo $! >> {pids}; "
           f"sleep 300 & echo $! >> {pids}; echo ready; wait")
    job = compute.submit(spec(tmp_path, run, name="group"))
    wait_state(compute, job.id, JobState.RUNNING)
    wait_until(lambda: pids.exists() and len(pids.read_text().split()) == 2)
    children = [int(p) for p in pids.read_text().split()]
    pgid = run_info(job.id).pgid
    assert all(pid_alive(p) for p in children) and all(os.getpgid(p) == pgid for p in children)
    started = time.monotonic()
    cancelled = compute.cancel(job.id)
    assert cancelled.state == JobState.CANCELLED and cancelled.reason == "cancelled by user"
    assert time.monotonic() - started < 15
    assert not any(pid_alive(p) for p in children), "a grandchild survived the cancel"
    assert not group_alive(pgid)
    assert any("SIGKILL" in line for line in compute.logs(job.id)), "the TERM-ignoring child needed SIGKILL"
    expected = [(None, "PENDING"), ("PENDING", "STARTING"), ("STARTING", "RUNNING"), ("RUNNING", "CANCELLED")]
    # the supervisor appends the event right after committing the state
    wait_until(lambda: [(e["previous"], e["state"]) for e in JobStore.default().events(job.id)] == expected, 10)


def test_processes_left_behind_by_a_finished_command_are_stopped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    compute = local_compute(monkeypatch)
    pid_file = tmp_path / "bg.pid"
    job = compute.wait(compute.submit(spec(tmp_path, f"sleep 300 & echo $! > {pid_file}; echo main done")).id, 30)
    assert job.state == JobState.SUCCEEDED
    assert not pid_alive(int(pid_file.read_text())), "a background process outlived its job"


def test_crashed_supervisor_is_reported_honestly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch, fake_gpus="1")
    job = compute.submit(spec(tmp_path, "echo working; sleep 300", name="crash", resources={"accelerators": "G:1"}))
    wait_state(compute, job.id, JobState.RUNNING)
    wait_until(lambda: "working" in list(compute.logs(job.id)))
    run = run_info(job.id)
    os.kill(run.supervisor_pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(run.supervisor_pid, run.supervisor_start), 10)
    dead = compute.get(job.id)
    assert dead.state == JobState.FAILED
    assert dead.reason == "supervisor died"
    assert f"pid {run.supervisor_pid}" in dead.detail and "working" in dead.detail
    wait_until(lambda: not group_alive(run.pgid), 10)  # the orphaned job was stopped ...
    nxt = compute.submit(spec(tmp_path, "echo next", name="next", resources={"accelerators": "G:1"}))
    assert compute.wait(nxt.id, 30).state == JobState.SUCCEEDED  # ... and its GPU freed
    assert [e["state"] for e in JobStore.default().events(job.id)][-1] == "FAILED"  # emitted by get()


def test_supervisor_stopped_by_sigterm_cancels_the_job(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch)
    job = compute.submit(spec(tmp_path, "sleep 300"))
    wait_state(compute, job.id, JobState.RUNNING)
    run = run_info(job.id)
    os.kill(run.supervisor_pid, signal.SIGTERM)
    final = compute.wait(job.id, 30)
    assert final.state == JobState.CANCELLED
    assert final.reason == "cancelled: the supervisor received SIGTERM"
    assert not group_alive(run.pgid)


def test_heartbeat_is_recorded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch, heartbeat_interval=0.2)
    job = compute.submit(spec(tmp_path, "sleep 300"))
    wait_state(compute, job.id, JobState.RUNNING)
    first = run_info(job.id).heartbeat
    wait_until(lambda: run_info(job.id).heartbeat > first + 0.3, 10)
    compute.cancel(job.id)


def test_stale_heartbeat_counts_when_the_start_time_is_unknown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without /proc (macOS) a recycled PID could pass for the supervisor: a stale heartbeat decides."""
    from cloudbridge.backends.local.compute_runs import set_run

    compute = local_compute(monkeypatch, heartbeat_interval=60)
    job = compute.submit(spec(tmp_path, "sleep 300"))
    wait_state(compute, job.id, JobState.RUNNING)
    run = run_info(job.id)
    set_run(JobStore.default(), job.id, supervisor_start=None, heartbeat=time.time() - 3600)
    dead = compute.get(job.id)
    assert dead.state == JobState.FAILED and dead.reason == "supervisor died"
    assert "last heartbeat 3600s ago" in dead.detail
    wait_until(lambda: not group_alive(run.pgid), 10)
    wait_until(lambda: not pid_alive(run.supervisor_pid, run.supervisor_start), 15)
    assert compute.get(job.id).reason == "supervisor died", "the late supervisor must not overwrite the verdict"
