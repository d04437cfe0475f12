"""The planner reads the cluster: `cloudbridge resources --provider slurm` and a `plan --pool` slurm resource."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cloudbridge_slurm.localcluster import LocalCluster

CLI = [sys.executable, "-m", "cloudbridge.cli"]


def _cli(cluster: LocalCluster, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "CLOUDBRIDGE_HOME": str(tmp_path / "home"), "SLURM_CONF": str(cluster.conf)}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, env=env)


def test_resources_lists_partitions_from_sinfo(slurm_cluster: LocalCluster, tmp_path: Path) -> None:
    result = _cli(slurm_cluster, tmp_path, "resources", "--provider", "slurm", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["partition"]: r for r in json.loads(result.stdout)["rows"]}
    assert set(rows) == {"debug", "short", "low", "high"}
    debug = rows["debug"]
    assert (debug["nodes"], debug["gpu_type"], debug["gpus_per_node"], debug["cpus"]) == (2, "T4", 2, 4)
    assert debug["memory_gb"] == round(4000 / 1024, 1) and debug["default"] and debug["max_time_s"] is None
    assert rows["short"]["max_time_s"] == 60 and debug["usable"] == 2
    table = _cli(slurm_cluster, tmp_path, "resources", "--provider", "slurm")
    assert table.returncode == 0 and "2xT4" in table.stdout and "short" in table.stdout, table.stdout


def test_plan_pool_places_tasks_on_a_probed_partition(slurm_cluster: LocalCluster, tmp_path: Path) -> None:
    (tmp_path / "pool.yaml").write_text("horizon: 10h\nresources:\n"
                                        "  - {name: hpc, provider: slurm, probe: true, instance_type: debug}\n")
    (tmp_path / "tasks.yaml").write_text("tasks:\n  - {name: a, gpus: 4, accelerator: T4, duration: 2h}\n"
                                         "  - {name: b, gpus: 2, duration: 1h}\n")
    result = _cli(slurm_cluster, tmp_path, "plan", "--batch", str(tmp_path / "tasks.yaml"), "--pool",
                  str(tmp_path / "pool.yaml"), "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    placed = {a["task"]: a for a in plan["best"]["assignments"]}
    assert placed["a"]["resource"] == "hpc" and placed["a"]["units"] == 2, placed  # 4 T4 = both 2-GPU nodes
    assert placed["b"]["resource"] == "hpc"


def test_a_pool_too_small_for_the_cluster_says_so(slurm_cluster: LocalCluster, tmp_path: Path) -> None:
    (tmp_path / "pool.yaml").write_text("resources:\n  - {name: hpc, provider: slurm, probe: true}\n")
    (tmp_path / "tasks.yaml").write_text("tasks:\n  - {name: big, gpus: 8, duration: 1h}\n")
    result = _cli(slurm_cluster, tmp_path, "plan", "--batch", str(tmp_path / "tasks.yaml"), "--pool",
                  str(tmp_path / "pool.yaml"))
    assert result.returncode == 2
    assert "needs 8 GPUs at once; the most any suitable resource has is 4 (hpc)" in result.stderr, result.stderr
    missing = _cli(slurm_cluster, tmp_path, "plan", "--batch", str(tmp_path / "tasks.yaml"), "--pool",
                   str(tmp_path / "pool2.yaml"))
    assert missing.returncode == 2
    (tmp_path / "pool3.yaml").write_text("resources:\n  - {name: hpc, provider: slurm, probe: true, "
                                         "instance_type: gpu}\n")
    wrong = _cli(slurm_cluster, tmp_path, "plan", "--batch", str(tmp_path / "tasks.yaml"), "--pool",
                 str(tmp_path / "pool3.yaml"))
    assert wrong.returncode == 2 and "pool3.yaml:2: resources[0].instance_type: provider 'slurm' has no partition " \
        "'gpu' with GPUs (partitions: debug, short, low, high)" in wrong.stderr, wrong.stderr
