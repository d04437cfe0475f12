"""A shared machine: stale process groups are never signalled, state is private, edits are seen
(issue 12, items 4, 5 and 8)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
from fixtures_local import local_compute, run_info, spec, wait_state, wait_until

from cloudbridge.backends.local.compute_process import pid_alive
from cloudbridge.jobstore.store import JobStore
from cloudbridge.records import JobState


def test_a_reused_pgid_is_never_killed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The supervisor dies, its job's group ends, and the number now leads an unrelated group."""
    from cloudbridge.backends.local.compute_runs import set_run

    compute = local_compute(monkeypatch)
    job = compute.submit(spec(tmp_path, "echo working; sleep 300", name="stale"))
    wait_state(compute, job.id, JobState.RUNNING)
    run = run_info(job.id)
    os.kill(run.supervisor_pid, signal.SIGKILL)
    os.killpg(run.pgid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(run.supervisor_pid, run.supervisor_start), 10)
    # an unrelated process group, standing in for the one that got the recycled number
    decoy = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        set_run(JobStore.default(), job.id, pgid=decoy.pid)
        dead = compute.get(job.id)
        assert dead.state == JobState.FAILED and dead.reason == "supervisor died"
        time.sleep(0.2)
        assert decoy.poll() is None, "an unrelated process group was killed"
    finally:
        decoy.kill()
        decoy.wait()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_is_private(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cb_home: Path) -> None:
    os.rmdir(cb_home)  # let cloudbridge create it
    old = os.umask(0o022)
    try:
        compute = local_compute(monkeypatch)
        (tmp_path / "train.py").write_text("print('hi')\n")
        os.chmod(tmp_path / "train.py", 0o755)
        job = compute.wait(compute.submit(spec(tmp_path, "python train.py", name="private")).id, 60)
        assert job.state == JobState.SUCCEEDED, job.detail
    finally:
        os.umask(old)
    assert _mode(cb_home) == 0o700
    job_dir = Path(job.extra["job_dir"])
    assert _mode(job_dir) == 0o700
    ours = [job_dir / "job.log", job_dir / "supervisor.log", job_dir / "code", *(job_dir / "code").rglob("*"),
            *(p for p in cb_home.rglob("*") if p.is_file() or p.name in ("jobs", "cache"))]
    loose = [f"{p} {oct(_mode(p))}" for p in ours if _mode(p) & 0o077]
    assert not loose, loose
    assert any(p.name.startswith("jobs.sqlite") or p.suffix == ".sqlite" for p in ours), ours
    assert _mode(job_dir / "code" / "train.py") == 0o700, "the executable bit is kept, for the owner only"


def test_existing_home_is_tightened(cb_home: Path) -> None:
    from cloudbridge.settings import cloudbridge_home

    os.chmod(cb_home, 0o755)
    assert cloudbridge_home() == cb_home
    assert _mode(cb_home) == 0o700


def test_same_size_edit_with_the_mtime_restored_changes_the_digest(tmp_path: Path, cb_home: Path) -> None:
    from cloudbridge.packaging import scan_workdir

    script = tmp_path / "train.py"
    script.write_text("print('old')\n")
    before = scan_workdir(tmp_path).digest
    st = script.stat()
    with open(script, "r+b") as handle:  # in place: same inode, same size
        handle.write(b"print('new')\n")
    os.utime(script, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = script.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (st.st_ino, st.st_size, st.st_mtime_ns)
    assert scan_workdir(tmp_path).digest != before


@pytest.mark.parametrize(
    ("section", "channels", "needle"),
    [
        ("inputs", ["train-data", "train_data"], "both become CB_INPUT_TRAIN_DATA"),
        ("outputs", ["Model", "model"], "both become CB_OUTPUT_MODEL"),
        ("outputs", ["Dir"], "CB_OUTPUT_DIR"),
        ("outputs", ["dir"], "CB_OUTPUT_DIR"),
    ],
)
def test_channel_collisions_are_refused_at_validation(tmp_path: Path, section: str, channels: list[str],
                                                       needle: str) -> None:
    """Refused with file:line: field (exit 2) by ``run --dry-run``, before any provider sees the job."""
    from fixtures_cli import assert_one_error_line, run_cli

    lines = "".join(f"  {name}: s3://bucket/{name}\n" for name in channels)
    (tmp_path / "job.yaml").write_text(f"name: j\nworkdir: null\nrun: echo\n{section}:\n{lines}")
    result = run_cli("run", str(tmp_path / "job.yaml"), "--dry-run")
    assert_one_error_line(result, needle, "job.yaml:4", section)
