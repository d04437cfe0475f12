"""RuntimeContext.detect on Slurm: the SLURM_* variables of an srun task, transcribed from sbatch(1)."""

from __future__ import annotations

import pytest

from cloudbridge.errors import UserError
from cloudbridge.runtime import RuntimeContext
from cloudbridge.runtime.launch import build_launch
from cloudbridge.runtime.slurm import PORT_BASE, PORT_SPAN, expand_nodelist, master_port_for

# sbatch(1) "OUTPUT ENVIRONMENT VARIABLES", as seen by the task on the second node of a 2-node job.
SLURM_ENV = {
    "SLURM_JOB_ID": "4242",
    "SLURM_JOB_NAME": "sst2",
    "SLURM_JOB_NODELIST": "gpu[07-08]",
    "SLURM_NNODES": "2",
    "SLURM_NODEID": "1",
    "SLURM_PROCID": "1",
    "SLURM_LOCALID": "0",
    "SLURM_NTASKS": "2",
    "SLURM_TASKS_PER_NODE": "1(x2)",
    "SLURM_GPUS_ON_NODE": "4",
    "SLURM_CPUS_ON_NODE": "32",
    "SLURM_SUBMIT_DIR": "/shared/cb/sst2",
}


@pytest.mark.parametrize(
    ("nodelist", "hosts"),
    [
        ("n1", ["n1"]),
        ("n[1-2]", ["n1", "n2"]),
        ("gpu[01-03,07]", ["gpu01", "gpu02", "gpu03", "gpu07"]),
        ("gpu[8-10]", ["gpu8", "gpu9", "gpu10"]),
        ("a[1-2],login2,b[05]", ["a1", "a2", "login2", "b05"]),
        ("rack[1-2]-n[1-2]", ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]),
    ],
)
def test_expand_nodelist(nodelist: str, hosts: list[str]) -> None:
    assert expand_nodelist(nodelist) == hosts


def test_malformed_nodelist_names_the_variable() -> None:
    with pytest.raises(UserError, match="SLURM_JOB_NODELIST"):
        expand_nodelist("gpu[1-x]")
    with pytest.raises(UserError, match="unclosed"):
        expand_nodelist("gpu[1-2")


def test_master_port_is_derived_from_the_job_id() -> None:
    assert master_port_for("4242") == PORT_BASE + 4242
    assert master_port_for(4242 + PORT_SPAN) == master_port_for(4242)
    assert PORT_BASE <= master_port_for("123456789") < PORT_BASE + PORT_SPAN
    assert master_port_for("4242") != master_port_for("4243")


def test_second_node_of_a_two_node_job() -> None:
    ctx = RuntimeContext.detect(SLURM_ENV, gpu_count=0)
    assert ctx.platform == "slurm"
    assert (ctx.node_rank, ctx.num_nodes, ctx.processes_per_node, ctx.gpus_per_node) == (1, 2, 4, 4)
    assert ctx.master_addr == "gpu07" and ctx.master_port == PORT_BASE + 4242
    assert ctx.hosts == ("gpu07", "gpu08")
    assert ctx.job_id == "4242"
    assert not ctx.is_launched and ctx.total_processes == 8


def test_staging_dirs_and_exported_master_win() -> None:
    env = {**SLURM_ENV, "CB_PLATFORM": "slurm", "CB_JOB_ID": "slurm-4242", "CB_OUTPUT_DIR": "/shared/cb/out",
           "CB_MODEL_DIR": "/shared/cb/model", "CB_INPUT_TRAIN": "/shared/cb/in/train", "MASTER_ADDR": "10.0.0.7"}
    ctx = RuntimeContext.detect(env, gpu_count=0)
    assert ctx.platform == "slurm" and ctx.job_id == "slurm-4242"
    assert ctx.master_addr == "10.0.0.7"
    assert (ctx.output_dir, ctx.model_dir) == ("/shared/cb/out", "/shared/cb/model")
    assert ctx.input_dir("train") == "/shared/cb/in/train"


def test_other_platforms_inside_an_allocation_are_not_slurm() -> None:
    env = {**SLURM_ENV, "CB_PLATFORM": "local", "CB_JOB_ID": "local-1"}
    assert RuntimeContext.detect(env, gpu_count=0).platform == "local"
    assert RuntimeContext.detect({"SLURM_JOB_ID": "1"}, gpu_count=0).platform == "none"


def test_gpus_from_cuda_visible_devices_without_slurm_gpus() -> None:
    env = {k: v for k, v in SLURM_ENV.items() if k != "SLURM_GPUS_ON_NODE"}
    assert RuntimeContext.detect({**env, "CUDA_VISIBLE_DEVICES": "0,1"}, gpu_count=0).processes_per_node == 2
    assert RuntimeContext.detect(env, gpu_count=0).processes_per_node == 1


def test_launched_worker_reads_the_same_context_back() -> None:
    ctx = RuntimeContext.detect({**SLURM_ENV, "CB_PLATFORM": "slurm"}, gpu_count=0)
    worker_env = {**SLURM_ENV, **ctx.to_env(), "RANK": "5", "LOCAL_RANK": "1", "WORLD_SIZE": "8"}
    worker = RuntimeContext.detect(worker_env, gpu_count=0)
    assert (worker.platform, worker.node_rank, worker.master_addr, worker.master_port) == (
        "slurm", 1, ctx.master_addr, ctx.master_port)
    assert (worker.rank, worker.local_rank, worker.world_size) == (5, 1, 8)


def test_accelerate_launch_for_the_second_node() -> None:
    ctx = RuntimeContext.detect({**SLURM_ENV, "CB_DISTRIBUTION": "accelerate"}, gpu_count=0)
    plan = build_launch(ctx, ["python", "train.py"], python="python3", which=lambda name: None)
    argv = plan.argv
    assert argv[argv.index("--machine_rank") + 1] == "1"
    assert argv[argv.index("--num_machines") + 1] == "2"
    assert argv[argv.index("--num_processes") + 1] == "8"
    assert argv[argv.index("--main_process_ip") + 1] == "gpu07"
    assert argv[argv.index("--main_process_port") + 1] == str(PORT_BASE + 4242)
