"""When an emulated job fails, the node (or rank) that failed first is named, with its last lines."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures_training import clean_env

CLI = [sys.executable, "-m", "cloudbridge.cli"]


def _job(tmp_path: Path, run: str, nodes: int, processes: int = 1) -> Path:
    spec = tmp_path / "job.yaml"
    spec.write_text(json.dumps({"name": "fails", "workdir": None, "run": run,
                                "resources": {"nodes": nodes, "processes": processes}}))
    return spec


@pytest.mark.parametrize(("platform", "run", "nodes", "procs", "culprit", "total"), [
    ("sagemaker", 'if [ "$SM_CURRENT_HOST" = algo-2 ]; then for i in 1 2 3; do echo "step $i on $SM_CURRENT_HOST"; '
     'done; echo "boom on $SM_CURRENT_HOST"; exit 3; fi; sleep 60', 2, 1, "node algo-2 (node 2 of 2)", 2),
    ("azureml", 'if [ "$RANK" = 2 ]; then echo "boom on rank $RANK"; exit 3; fi; sleep 60', 2, 2,
     "process node1-rank2 (process 3 of 4)", 4),
], ids=["sagemaker", "azureml"])
def test_failure_names_the_first_failing_node_and_its_last_lines(tmp_path: Path, platform: str, run: str,
                                                                nodes: int, procs: int, culprit: str,
                                                                total: int) -> None:
    spec = _job(tmp_path, run, nodes, procs)
    started = time.monotonic()
    proc = subprocess.run([*CLI, "emulate", str(spec), "--as", platform, "--root", str(tmp_path / "root"), "--json"],
                          capture_output=True, text=True, env=clean_env(), timeout=120)
    assert time.monotonic() - started < 50, "the other nodes were stopped, not waited for"
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"emulate: {culprit} failed first, with exit status 3" in proc.stderr, proc.stderr
    name = culprit.split()[1]
    assert f"  {name}| boom on" in proc.stderr, proc.stderr
    result = json.loads(proc.stdout[proc.stdout.index("{\n"):])
    assert result["failed_first"] == name and result["failed_tail"][-1].startswith("boom on")
    assert len(result["nodes"]) == total


def test_the_first_failure_wins_over_the_failures_it_causes(tmp_path: Path) -> None:
    """Node algo-1 fails at once; algo-2 fails 1.5 s later because its peer is gone: algo-1 is named."""
    from cloudbridge.emulate import emulate
    from cloudbridge.specs import load_job_spec

    run = ('if [ "$SM_CURRENT_HOST" = algo-1 ]; then echo "root cause"; exit 7; fi; '
           'trap "" TERM; sleep 1.5; echo "lost my peer"; exit 9')
    result = emulate(load_job_spec(_job(tmp_path, run, 2)), "sagemaker", root=str(tmp_path / "root"))
    assert (result.exit_code, result.failed_first, result.failed_tail[-1]) == (7, "algo-1", "root cause")


def test_rendezvous_ports_avoid_the_ephemeral_range_and_concurrent_emulations(monkeypatch: pytest.MonkeyPatch) -> None:
    """The race behind a rare 'address already in use': a port chosen by bind(0) sits in the range the
    kernel hands to outgoing connections, and two emulations could choose the same one."""
    from cloudbridge.runtime import launch

    low, _ = launch._ephemeral_range()
    ports = {launch.free_port() for _ in range(20)}
    assert all(port < low for port in ports), (ports, low)
    first = launch.lease_port()
    picks = iter([first.port, first.port, 20001 if first.port != 20001 else 20002])
    monkeypatch.setattr(launch, "free_port", lambda: next(picks))
    second = launch.lease_port()
    try:
        assert second.port != first.port, "a port leased by another emulation is skipped"
    finally:
        first.release()
        second.release()


def test_the_port_lease_folder_is_private_to_its_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """In a shared /tmp the lease folder is per user (0700, lock files 0600); another user's is refused."""
    import os
    import stat
    import tempfile

    from cloudbridge.errors import UserError
    from cloudbridge.runtime import launch

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    uid = os.getuid()
    (tmp_path / f"cloudbridge-ports-{uid}").mkdir(mode=0o777)  # made earlier with a loose mode: tightened
    lease = launch.lease_port()
    try:
        folder = tmp_path / f"cloudbridge-ports-{uid}"
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE((folder / str(lease.port)).stat().st_mode) == 0o600
    finally:
        lease.release()
    (tmp_path / "cloudbridge-ports-4242").mkdir()  # stands for a folder another user made first
    monkeypatch.setattr(os, "getuid", lambda: 4242)
    with pytest.raises(UserError, match="not a folder of this user"):
        launch.lease_port()
    monkeypatch.setattr(os, "getuid", lambda: 4343)
    (tmp_path / "cloudbridge-ports-4343").symlink_to(folder)  # a planted link, even to our own folder
    with pytest.raises(UserError, match="not a folder of this user"):
        launch.lease_port()
