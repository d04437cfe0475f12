"""Jobs on the real 2-node cluster: a 2-node accelerate DDP job, --time and outside scancel, outputs back."""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cloudbridge_slurm.localcluster import LocalCluster
from cloudbridge_slurm.provider import SlurmProvider
from cloudbridge_slurm.settings import SlurmSettings

from cloudbridge.interfaces import wait_for_state
from cloudbridge.records import JobState
from cloudbridge.specs import JobSpec

# Written without cloudbridge: plain accelerate, as a user's training script would be.
DDP_SCRIPT = textwrap.dedent('''
    import json, os, socket
    import torch
    from accelerate import Accelerator

    acc = Accelerator()
    total = acc.reduce(torch.tensor([acc.process_index + 1.0]), reduction="sum").item()
    seen = {"rank": acc.process_index, "world": acc.num_processes, "sum": total,
            "node": os.environ["SLURM_NODEID"]}
    print("DDP " + json.dumps(seen), flush=True)
    out = os.environ["CB_OUTPUT_DIR"]
    if acc.is_main_process:
        os.makedirs(os.path.join(os.environ["CB_MODEL_DIR"]), exist_ok=True)
        with open(os.path.join(os.environ["CB_MODEL_DIR"], "weights.json"), "w") as f:
            json.dump(seen, f)
''')


@pytest.mark.slow
def test_two_node_accelerate_ddp_job_sees_world_size_two(slurm_provider: SlurmProvider, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(DDP_SCRIPT, encoding="utf-8")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text("text,label\nfine,1\n", encoding="utf-8")
    spec = JobSpec(name="ddp", provider="slurm", workdir=str(tmp_path), run="python train.py",
                   distribution="accelerate", resources={"nodes": 2, "max_runtime": "5m"},
                   inputs={"train": str(tmp_path / "data")}, outputs={"model": str(tmp_path / "back" / "model")},
                   env={"OMP_NUM_THREADS": "1"}, source=str(tmp_path / "job.yaml"))
    compute = slurm_provider.compute
    job = compute.wait(compute.submit(spec).id, timeout=240)
    logs = list(compute.logs(job.id))
    assert job.state is JobState.SUCCEEDED, (job.reason, job.detail, logs[-30:])
    seen = [json.loads(line.split("DDP ", 1)[1]) for line in logs if "DDP {" in line]
    assert sorted(s["rank"] for s in seen) == [0, 1], logs
    assert all(s["world"] == 2 and s["sum"] == 3.0 for s in seen), seen  # all_reduce across the two nodes
    assert sorted(s["node"] for s in seen) == ["0", "1"]
    assert json.loads((tmp_path / "back" / "model" / "weights.json").read_text())["world"] == 2  # came back
    assert job.extra["slurm_state"] == "COMPLETED" and job.exit_code == 0


def _slurm_id(job_extra: dict[str, object]) -> str:
    return str(job_extra["slurm_job_id"])


def test_time_limit_reads_as_timeout(slurm_provider: SlurmProvider, tmp_path: Path) -> None:
    spec = JobSpec(name="too-long", provider="slurm", workdir=str(tmp_path), run="echo started && sleep 300",
                   resources={"max_runtime": "1m"})  # Slurm rounds --time up to minutes
    compute = slurm_provider.compute
    job = compute.wait(compute.submit(spec).id, timeout=150)  # and checks the limits every ~30 s
    assert job.state is JobState.FAILED
    assert job.reason == "timed out: running stage exceeded max_runtime 1m", (job.reason, job.detail)
    assert job.extra["slurm_state"] == "TIMEOUT" and "--time=0-00:01:00" in (job.detail or "")


def test_scancel_from_outside_reads_as_cancelled(slurm_provider: SlurmProvider, slurm_cluster: object,
                                                 tmp_path: Path) -> None:
    spec = JobSpec(name="cancel-me", provider="slurm", workdir=str(tmp_path), run="echo started && sleep 300")
    compute = slurm_provider.compute
    job = wait_for_state(compute, compute.submit(spec).id, {JobState.RUNNING}, timeout=60)
    subprocess.run(["scancel", _slurm_id(job.extra)], check=True, env=slurm_cluster.environ())  # type: ignore[attr-defined]
    final = compute.wait(job.id, timeout=60)
    assert final.state is JobState.CANCELLED and final.reason is None
    assert final.extra["slurm_state"] == "CANCELLED"


RESUMABLE = ('if [ -f "$CB_CHECKPOINT_DIR/step" ]; then echo "resumed from step $(cat "$CB_CHECKPOINT_DIR/step")"; '
             'else echo 7 > "$CB_CHECKPOINT_DIR/step"; echo "fresh start"; sleep 300; fi')


def test_a_preempted_spot_job_is_restarted_from_its_checkpoints(slurm_cluster: LocalCluster,
                                                                make_settings: Callable[..., SlurmSettings],
                                                                tmp_path: Path) -> None:
    """Real preemption: a job of partition 'high' takes the nodes of the running 'low' (spot) job."""
    provider = SlurmProvider(make_settings(partition="low", sbatch_options=["--exclusive"]))
    compute = provider.compute
    spec = JobSpec(name="preempt-me", provider="slurm", workdir=str(tmp_path), run=RESUMABLE,
                   checkpoints="slurm://staging/ckpt/preempt-me",
                   resources={"spot": True, "max_restarts": 1, "max_runtime": "10m"})
    job = wait_for_state(compute, compute.submit(spec).id, {JobState.RUNNING}, timeout=60)
    deadline = time.monotonic() + 30
    while "fresh start" not in list(compute.logs(job.id)) and time.monotonic() < deadline:
        time.sleep(0.3)
    subprocess.run(["sbatch", "-p", "high", "-N", "2", "--exclusive", "-o", "/dev/null", "--wrap", "sleep 2"],
                   check=True, env=slurm_cluster.environ(), capture_output=True)
    final = compute.wait(job.id, timeout=120)
    assert final.state is JobState.SUCCEEDED, (final.reason, final.detail)
    assert [a["reason"] for a in final.attempts] == ["spot reclaimed", None], final.attempts
    assert final.extra["restarts"] == 1 and final.attempts[1]["native_id"].endswith("-r1")
    logs = list(compute.logs(job.id))
    assert "fresh start" in logs and "resumed from step 7" in logs, logs
    assert any(line.startswith("[cloudbridge] attempt 2:") for line in logs)
