"""Failure reasons the real cluster produces itself: a step OOM-killed by the kernel (cgroup v1 memory
enforcement), a node whose slurmd dies mid-job (NODE_FAIL), and jobs the controller has forgotten, read from
``sacct`` (slurmdbd + MariaDB) or, without accounting, reported in one line.

These run on their own small clusters (``LocalCluster`` options the shared one does not need): distinct node
names (the cgroup folders ``slurm_<node>`` are machine-wide), ``SlurmdTimeout=5``, accounting when Debian's
``slurmdbd mariadb-server-core`` are installed (``scripts/ci/slurm.sh`` installs them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cloudbridge_slurm.localcluster import LocalCluster, memory_cgroups_usable, missing_programs
from cloudbridge_slurm.provider import SlurmProvider
from cloudbridge_slurm.settings import SlurmSettings

from cloudbridge.interfaces import wait_for_state
from cloudbridge.records import JobState
from cloudbridge.specs import JobSpec

ACCOUNTING_PROGRAMS = ("slurmdbd", "mariadbd", "mariadb-install-db", "mariadb", "sacct")


def _accounting_missing() -> list[str]:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin"])
    return [name for name in ACCOUNTING_PROGRAMS if shutil.which(name, path=path) is None]


def _cluster(root: Path, tag: str, **options: object) -> LocalCluster:
    missing = missing_programs()
    if missing:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} missing): run scripts/ci/slurm.sh")
    if os.geteuid() != 0:
        pytest.skip("the local Slurm cluster runs as root")
    return LocalCluster(root, nodes=2, cpus=2, memory_mb=3000, node_prefix=f"{tag}{os.getpid()}n",
                        **options).start()  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def failing_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Memory cgroups (when this machine has a writable cgroup v1 memory hierarchy), SlurmdTimeout=5."""
    cluster = _cluster(tmp_path_factory.mktemp("slurm-fail"), "f", slurmd_timeout=5,
                       memory_cgroups=memory_cgroups_usable())
    try:
        yield cluster
    finally:
        cluster.stop()


def _provider(cluster: LocalCluster, make_settings: Callable[..., SlurmSettings],
              monkeypatch: pytest.MonkeyPatch) -> SlurmProvider:
    monkeypatch.setenv("SLURM_CONF", str(cluster.conf))  # the runner reads its environment when it is made
    return SlurmProvider(make_settings())


def test_oom_kill_and_node_failure_read_as_their_reasons(failing_cluster: LocalCluster,
                                                         make_settings: Callable[..., SlurmSettings],
                                                         monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Both jobs run at once: a 1-node job that outgrows --mem=1G, and a 2-node job whose second slurmd is
    killed once both ranks have started."""
    compute = _provider(failing_cluster, make_settings, monkeypatch).compute
    grow = "python -c \"chunks = [b'x' * (64 << 20) for _ in range(48)]; print('survived')\""  # 3 GB, 64 MB at a time
    oom = compute.submit(JobSpec(name="oom", provider="slurm", workdir=str(tmp_path), run=grow,
                                 resources={"memory": "1", "max_runtime": "5m"}))
    spec = JobSpec(name="node-fail", provider="slurm", workdir=str(tmp_path),
                   run='echo "started $SLURM_NODEID"; sleep 300',
                   resources={"nodes": 2, "memory": "1", "max_runtime": "5m"})
    job = wait_for_state(compute, compute.submit(spec).id, {JobState.RUNNING}, timeout=60)
    deadline = time.monotonic() + 60
    while not {"started 0", "started 1"} <= set(compute.logs(job.id)) and time.monotonic() < deadline:
        time.sleep(0.3)
    victim = failing_cluster.nodes[1]
    failing_cluster.kill_node(victim)
    try:
        failed = compute.wait(job.id, timeout=120)  # SlurmdTimeout=5: Slurm notices in about 25 s
    finally:
        failing_cluster.start_node(victim)
    assert failed.state is JobState.FAILED and failed.reason == "node failure", (failed.reason, failed.detail)
    assert failed.extra["slurm_state"] == "NODE_FAIL" and victim[:-1] in (failed.detail or ""), failed.detail

    ended = compute.wait(oom.id, timeout=120)
    if not failing_cluster.memory_cgroups:
        pytest.skip("no writable cgroup v1 memory hierarchy here: Slurm 22.05 records an OOM kill only through "
                    "task/cgroup (JobAcctGatherParams=OverMemoryKill cancels the step and records no OOM)")
    assert ended.state is JobState.FAILED and ended.reason == "out of memory", (ended.reason, ended.detail)
    # the training ran under srun: Slurm marks the step, and the job's derived exit code is 0:125
    assert ended.extra["slurm_state"] == "FAILED" and "oom-kill event" in (ended.detail or ""), ended.detail
    assert "survived" not in list(compute.logs(ended.id))


def test_a_forgotten_job_without_accounting_reads_in_one_line(failing_cluster: LocalCluster,
                                                               make_settings: Callable[..., SlurmSettings],
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    """After a clean controller restart (as after MinJobAge), with no accounting: the exit-status file
    tells a job that ran to its end; a cancelled one is FAILED with one line saying what is unknown."""
    compute = _provider(failing_cluster, make_settings, monkeypatch).compute
    done = compute.wait(compute.submit(JobSpec(name="exit-3", provider="slurm", workdir=str(tmp_path),
                                               run="exit 3")).id, timeout=60)
    spec = JobSpec(name="cancel-me", provider="slurm", workdir=str(tmp_path), run="echo started; sleep 300")
    running = wait_for_state(compute, compute.submit(spec).id, {JobState.RUNNING}, timeout=60)
    deadline = time.monotonic() + 60
    while "started" not in list(compute.logs(running.id)) and time.monotonic() < deadline:
        time.sleep(0.3)  # in srun: cancelled before srun, the script can still end on its own (srun: job expired)
    compute.cancel(running.id)
    assert compute.wait(running.id, timeout=60).state is JobState.CANCELLED
    failing_cluster.restart_controller(forget_jobs=True)
    again = compute.get(done.id)
    assert (again.state, again.reason) == (JobState.FAILED, "non-zero exit (code 3)"), again.detail
    assert again.extra["state_source"] == "exit-status file"
    lost = compute.get(running.id)
    assert lost.state is JobState.FAILED and lost.reason == "failed", lost.detail
    first = (lost.detail or "").splitlines()[0]
    assert first.startswith(f"Slurm no longer knows job {running.extra['slurm_job_id']}") and \
        "the cluster keeps no accounting (sacct)" in first and "Traceback" not in (lost.detail or ""), lost.detail


def _until_accounted(cluster: LocalCluster, ids: list[str], timeout: float = 60) -> None:
    """Wait until slurmdbd has the jobs' end states: slurmctld sends them on its own schedule, and a clean
    restart drops what it has not sent yet (as Slurm does long before MinJobAge forgets a job)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "State", "-j", ",".join(ids)], capture_output=True,
                             text=True, env=cluster.environ(), check=False).stdout.split()
        if len(out) == len(ids) and all(state in ("COMPLETED", "FAILED") for state in out):
            return
        time.sleep(0.5)
    raise AssertionError(f"slurmdbd did not record the end of jobs {ids} within {timeout:g}s: {out}")


def test_states_of_forgotten_jobs_come_from_sacct(make_settings: Callable[..., SlurmSettings],
                                                  monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With slurmdbd + MariaDB: after a clean controller restart squeue and scontrol know nothing, sacct does."""
    missing = _accounting_missing()
    if missing:
        pytest.skip(f"accounting is not installed ({', '.join(missing)} missing): run scripts/ci/slurm.sh")
    cluster = _cluster(tmp_path / "cluster", "a", accounting=True)
    work = tmp_path / "work"
    work.mkdir()
    try:
        compute = _provider(cluster, make_settings, monkeypatch).compute
        submitted = [compute.submit(JobSpec(name=name, provider="slurm", workdir=str(work), run=run))
                     for name, run in (("exit-3", "exit 3"), ("fine", "echo fine"))]
        done, ok = (compute.wait(job.id, timeout=60) for job in submitted)
        assert (done.state, ok.state) == (JobState.FAILED, JobState.SUCCEEDED), (
            done.extra, ok.extra, (cluster.root / "log" / "slurmctld.log").read_text(errors="replace")[-3000:])
        _until_accounted(cluster, [str(job.extra["slurm_job_id"]) for job in (done, ok)])
        cluster.restart_controller(forget_jobs=True)
        for job, state, reason in ((done, JobState.FAILED, "non-zero exit (code 3)"),
                                   (ok, JobState.SUCCEEDED, None)):
            again = compute.get(job.id)
            assert (again.state, again.reason) == (state, reason), again.detail
            assert again.extra["state_source"] == "sacct" and again.extra["slurm_job_id"] == job.extra["slurm_job_id"]
            assert again.started_at and again.ended_at, "sacct's times"
    finally:
        cluster.stop()
