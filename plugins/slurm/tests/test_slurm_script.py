"""The pure sbatch builder, against golden files (regenerate with CLOUDBRIDGE_UPDATE_GOLDEN=1), and the parsers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cloudbridge_slurm.cluster import build_cluster, format_time, parse_gres, parse_nodes, parse_partitions, parse_time
from cloudbridge_slurm.script import JobLayout, build_script, input_paths, output_paths, secret_env_warning
from cloudbridge_slurm.settings import SlurmSettings
from cloudbridge_slurm.states import STATES, parse_sacct, parse_scontrol, parse_squeue

from cloudbridge.managed.adapter import Placement
from cloudbridge.managed.limits import Limits
from cloudbridge.specs import JobSpec

GOLDEN = Path(__file__).parent / "golden"
LAYOUT = JobLayout("/shared/cb", "sst2-20260101-000000-abcd", "sst2-20260101-000000-abcd")


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("CLOUDBRIDGE_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed (CLOUDBRIDGE_UPDATE_GOLDEN=1 to accept)"


def test_two_node_gpu_job_script_matches_golden(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    spec = JobSpec(
        name="sst2", provider="slurm", workdir=".", distribution="accelerate",
        run="python train.py --epochs 1 --model 'a b'",
        resources={"accelerators": "A100:4", "nodes": 2, "cpus": "16+", "memory": "64+", "spot": True,
                   "max_runtime": "2h"},
        inputs={"train": "./data", "shared": "slurm://staging/datasets/sst2", "remote": "s3://bucket/sst2/"},
        outputs={"model": "./outputs/model", "metrics": "s3://bucket/runs/sst2"},
        env={"HF_HUB_OFFLINE": "1"}, source=str(tmp_path / "job.yaml"),
    )
    settings = SlurmSettings(partition="gpu", account="ml", qos="normal", constraint="a100",
                             staging_dir="/shared/cb", setup="module load cuda\nsource /shared/venv/bin/activate")
    limits = Limits(max_runtime=7200)
    script = build_script(spec, Placement("gpu", None, 2, True), limits, settings=settings, layout=LAYOUT,
                          code_path="/shared/cb/code/workdir-abc.tar.gz",
                          tags={"cloudbridge:job-id": "slurm-sst2-20260101-000000-abcd", "cloudbridge:name": "sst2"})
    _check_golden("two_node_gpu.sbatch", script)
    assert "#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=1\n#SBATCH --time=0-02:00:00\n#SBATCH --requeue" in script
    assert "#SBATCH --gpus-per-node=a100:4" in script and "#SBATCH --cpus-per-task=16" in script
    assert "#SBATCH --mem=64G" in script and "#SBATCH --partition=gpu" in script
    assert "srun --kill-on-bad-exit=1 cloudbridge-launch -- python train.py --epochs 1 --model 'a b'" in script


def test_cpu_shell_job_script_matches_golden() -> None:
    spec = JobSpec(name="hello", provider="slurm", workdir=None, run="echo $HOSTNAME && exit 3")
    settings = SlurmSettings(staging_dir="/shared/cb")
    script = build_script(spec, Placement("default", None, 1, False), Limits(max_runtime=90), settings=settings,
                          layout=JobLayout("/shared/cb", "hello-1", "hello-1"), code_path=None, tags={})
    _check_golden("cpu_shell.sbatch", script)
    assert "#SBATCH --no-requeue" in script and "--partition" not in script and "--gpus" not in script
    assert "#SBATCH --time=0-00:01:30" in script
    assert "cloudbridge-launch -- bash -c 'echo $HOSTNAME && exit 3'" in script


def test_channels_are_staged_downloaded_or_used_in_place() -> None:
    spec = JobSpec(name="x", run="true", inputs={"a": "./a", "b": "slurm://staging/d/b", "c": "gs://b/c"},
                   outputs={"model": "./m", "logs": "slurm://staging/out/logs", "up": "s3://b/up"})
    assert input_paths(spec, LAYOUT) == {
        "a": ("staged", f"{LAYOUT.job_dir}/inputs/a"), "b": ("in-place", "/shared/cb/d/b"),
        "c": ("download", f"{LAYOUT.job_dir}/inputs/c")}
    assert output_paths(spec, LAYOUT) == {
        "model": ("fetch", f"{LAYOUT.job_dir}/model"), "logs": ("in-place", "/shared/cb/out/logs"),
        "up": ("upload", f"{LAYOUT.job_dir}/output/up")}


@pytest.mark.parametrize(("text", "seconds"), [
    ("UNLIMITED", None), ("infinite", None), ("30", 1800), ("01:30", 90), ("02:00:00", 7200),
    ("1-00:00:00", 86400), ("2-12", 216000), ("1-02:03", 93780)])
def test_parse_time(text: str, seconds: int | None) -> None:
    assert parse_time(text) == seconds


def test_format_time() -> None:
    assert format_time(90) == "0-00:01:30" and format_time(90061) == "1-01:01:01" and format_time(0) == "0-00:00:01"


@pytest.mark.parametrize(("gres", "parsed"), [
    ("gpu:t4:2", ("T4", 2)), ("gpu:4", (None, 4)), ("gpu:a100:8(S:0-1),shard:8", ("A100", 8)),
    ("shard:2,gpu:h100:4", ("H100", 4)), ("", (None, 0)), ("(null)", (None, 0))])
def test_parse_gres(gres: str, parsed: tuple[str | None, int]) -> None:
    assert parse_gres(gres) == parsed


SINFO = """{"nodes": [
 {"name": "g1", "state": "idle", "state_flags": [], "cpus": 64, "real_memory": 512000, "gres": "gpu:a100:8",
  "partitions": ["gpu"]},
 {"name": "g2", "state": "mixed", "state_flags": ["DRAIN"], "cpus": 64, "real_memory": 512000,
  "gres": "gpu:a100:8(S:0-1)", "partitions": ["gpu"]},
 {"name": "c1", "state": "allocated", "cpus": 32, "real_memory": 128000, "gres": "", "partitions": ["cpu", "gpu"]}
]}"""
PARTITIONS = ("PartitionName=gpu AllowGroups=ALL Default=NO MaxTime=2-00:00:00 Nodes=g[1-2],c1 State=UP\n"
              "PartitionName=cpu AllowGroups=ALL Default=YES MaxTime=UNLIMITED Nodes=c1 State=UP\n")


def test_cluster_from_sinfo_and_scontrol() -> None:
    cluster = build_cluster(parse_nodes(SINFO), parse_partitions(PARTITIONS))
    assert list(cluster.partitions) == ["gpu", "cpu"] and cluster.default.name == "cpu"
    gpu = cluster.partitions["gpu"]
    assert gpu.max_time == 172800 and gpu.max_gpus_per_node == 8 and len(gpu.nodes) == 3
    assert [n.usable for n in gpu.nodes] == [True, False, True]


def test_squeue_json_exit_code_is_the_wait_status() -> None:
    text = ('{"jobs": [{"job_id": 7, "job_state": "FAILED", "exit_code": 768, "state_reason": "NonZeroExitCode",'
            ' "submit_time": 100, "start_time": 101, "end_time": 103, "time_limit": 2, "restart_cnt": 0,'
            ' "nodes": "n[1-2]", "partition": "debug"},'
            ' {"job_id": 8, "job_state": "CANCELLED", "exit_code": 15, "submit_time": 1, "start_time": 0}]}')
    first, second = parse_squeue(text)
    assert (first.job_id, first.state, first.exit_code, first.signal, first.time_limit) == ("7", "FAILED", 3, None, 120)
    assert (second.exit_code, second.signal, second.start_time) == (0, 15, None)


def test_scontrol_and_sacct_records() -> None:
    rec = parse_scontrol("JobId=12 JobName=x JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15 Restarts=1 "
                         "TimeLimit=00:01:00 SubmitTime=2026-01-01T00:00:00 StartTime=2026-01-01T00:00:01 "
                         "EndTime=2026-01-01T00:01:01 NodeList=n1 Partition=short")
    assert rec is not None and (rec.state, rec.exit_code, rec.signal, rec.time_limit, rec.restarts) == (
        "TIMEOUT", 0, 15, 60, 1)
    sacct = parse_sacct("12|CANCELLED by 0|0:0|2026-01-01T00:00:00|2026-01-01T00:00:01|2026-01-01T00:00:09|"
                        "00:10:00|n1|debug\n12.batch|CANCELLED|0:15|||||n1|\n")
    assert sacct is not None and (sacct.state, sacct.time_limit, sacct.source) == ("CANCELLED", 600, "sacct")


def test_every_slurm_state_maps() -> None:
    assert {s.value for s in STATES.values()} == {"PENDING", "STARTING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"}
    assert STATES["TIMEOUT"].value == "FAILED" and STATES["CANCELLED"].value == "CANCELLED"


def test_derived_exit_code_marks_an_srun_step_killed_for_memory() -> None:
    """As Slurm 22.05 reported a job whose srun step the kernel OOM-killed (test_slurm_failures.py)."""
    squeue = '{"jobs": [{"job_id": 1, "job_state": "FAILED", "exit_code": 256, "derived_exit_code": %d}]}'
    (rec,) = parse_squeue(squeue % 253)
    assert (rec.exit_code, rec.derived_signal, rec.step_out_of_memory) == (1, 125, True)
    assert not parse_squeue(squeue % 256)[0].step_out_of_memory  # a step that exited 1
    line = "JobId=1 JobState=FAILED Reason=NonZeroExitCode ExitCode=1:0 DerivedExitCode=0:125 NodeList=n1"
    assert parse_scontrol(line).step_out_of_memory  # type: ignore[union-attr]
    sacct = parse_sacct("1|FAILED|1:0|2026-01-01T00:00:00|2026-01-01T00:00:01|2026-01-01T00:00:09|UNLIMITED|n1|"
                        "debug|0:125")
    assert sacct is not None and sacct.step_out_of_memory


def test_secret_looking_env_values_are_named_not_shown() -> None:
    token = "hf_" + "a1B2c3D4" * 4
    spec = JobSpec(name="x", run="true", env={"HF_TOKEN": token, "DB": "postgres://u:pw@h/db", "OMP_NUM_THREADS": "1"})
    warning = secret_env_warning(spec)
    assert warning is not None and warning.startswith("env DB, HF_TOKEN look secret: ") and token not in warning
    assert "pw@" not in warning and secret_env_warning(JobSpec(name="x", run="true")) is None
