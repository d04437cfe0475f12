"""Bad input to `cloudbridge run` on Slurm: one line naming the file, line and field; exit 2; nothing submitted."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from cloudbridge_slurm.localcluster import LocalCluster

CLI = [sys.executable, "-m", "cloudbridge.cli"]

CASES = {
    "unknown-partition": ("overrides: {slurm: {partition: nope}}", "overrides.slurm.partition",
                          "unknown partition 'nope' (partitions: debug, short, low, high)"),
    "too-many-gpus": ("resources: {accelerators: 'T4:4'}", "resources.accelerators",
                      "asks for 4 GPUs per node, but no node of partition 'debug' has that many T4 GPUs"),
    "time-above-limit": ("resources: {max_runtime: 2h}\noverrides: {slurm: {partition: short}}",
                         "resources.max_runtime", "above the time limit of partition 'short' (0-00:01:00)"),
    "node-local-staging": ("overrides: {slurm: {staging_dir: /dev/shm/cb-staging}}", "overrides.slurm.staging_dir",
                           "is under /dev/shm, which is local to each node"),
    "unwritable-staging": ("overrides: {slurm: {staging_dir: /proc/cb-staging}}", "overrides.slurm.staging_dir",
                           "staging folder /proc/cb-staging is not writable"),
    "unreachable-login": ("overrides: {slurm: {login: 'nobody@127.0.0.1:1'}}", "overrides.slurm.login",
                          "cannot reach the login host: ssh to nobody@127.0.0.1:1 failed"),
}


def _queue(cluster: LocalCluster) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i"], capture_output=True, text=True, check=True,
                         env=cluster.environ()).stdout
    return sorted(out.split())  # squeue orders jobs by its own rules (two finished jobs swapped in a -n 2 run)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_nothing_is_submitted(case: str, slurm_cluster: LocalCluster,
                                                               staging_root: Path, tmp_path: Path) -> None:
    extra, field, message = CASES[case]
    staging = staging_root / f"bad-{case}"
    (tmp_path / "job.yaml").write_text(f"name: bad\nprovider: slurm\nworkdir: .\nrun: echo never\n{extra}\n",
                                       encoding="utf-8")
    before = _queue(slurm_cluster)
    env = {**os.environ, "NO_COLOR": "1", "CLOUDBRIDGE_HOME": str(tmp_path / "home"),
           "SLURM_CONF": str(slurm_cluster.conf),
           "CLOUDBRIDGE_SLURM_STAGING_DIR": str(staging), "CLOUDBRIDGE_SLURM_NODE_LOCAL": '["/dev/shm"]',
           "CLOUDBRIDGE_SLURM_SETUP": f"export PATH={shlex.quote(os.path.dirname(sys.executable))}:$PATH"}
    result = subprocess.run([*CLI, "run", str(tmp_path / "job.yaml"), "--detach"], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {tmp_path / 'job.yaml'}:5: {field}: "), lines[0]  # the field's line
    assert message in lines[0], lines[0]
    assert _queue(slurm_cluster) == before, "nothing was submitted"
    assert not (staging / "jobs").exists(), "nothing was staged"


def test_what_sbatch_refuses_is_one_line_exit_2_and_leaves_no_job(slurm_cluster: LocalCluster, staging_root: Path,
                                                                  tmp_path: Path) -> None:
    staging = staging_root / "bad-constraint"
    (tmp_path / "job.yaml").write_text("name: bad\nprovider: slurm\nworkdir: .\nrun: echo never\n", encoding="utf-8")
    before = _queue(slurm_cluster)
    env = {**os.environ, "NO_COLOR": "1", "CLOUDBRIDGE_HOME": str(tmp_path / "home"),
           "SLURM_CONF": str(slurm_cluster.conf), "CLOUDBRIDGE_SLURM_STAGING_DIR": str(staging),
           "CLOUDBRIDGE_SLURM_NODE_LOCAL": '["/dev/shm"]', "CLOUDBRIDGE_SLURM_CONSTRAINT": "no-such-feature"}
    result = subprocess.run([*CLI, "run", str(tmp_path / "job.yaml"), "--detach"], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    # sbatch answers after the code package was staged: the package line comes first, then one error
    assert len(errors) == 1 and errors[0].startswith("error: settings.slurm.constraint: Slurm refused the job: "), \
        result.stderr
    assert "package stays at slurm://staging/code/" in errors[0], errors[0]
    assert _queue(slurm_cluster) == before, "nothing was queued"
    assert not list((staging / "jobs").iterdir()), "the job's folder was removed"
