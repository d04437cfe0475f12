"""cloudbridge-launch: the argv built per platform (pure), and one real 2-process gloo run on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from test_runtime_context import AZUREML_ENV, LOCAL_ENV, SAGEMAKER_ENV, VERTEX_ENV

from cloudbridge.errors import UserError
from cloudbridge.runtime import RuntimeContext
from cloudbridge.runtime.launch import build_launch, split_program

PY = "/usr/bin/python3"
LAUNCH = [sys.executable, "-m", "cloudbridge.runtime.launch"]


def _which(name: str) -> str | None:
    return {"cloudbridge-finetune": "/venv/bin/cloudbridge-finetune", "nvidia-smi": "/usr/bin/nvidia-smi"}.get(name)


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_sagemaker_multi_node_accelerate_argv() -> None:
    ctx = RuntimeContext.detect({**SAGEMAKER_ENV, "SM_NUM_GPUS": "8"}, gpu_count=0)
    plan = build_launch(ctx, ["python", "train.py", "--epochs", "3"], python=PY)
    assert plan.launcher == "accelerate"
    assert plan.argv[:4] == [PY, "-m", "accelerate.commands.launch", "--multi_gpu"]
    assert _flag(plan.argv, "--num_machines") == "2" and _flag(plan.argv, "--machine_rank") == "1"
    assert _flag(plan.argv, "--num_processes") == "16"
    assert _flag(plan.argv, "--main_process_ip") == "algo-1"
    assert plan.argv[-3:] == ["train.py", "--epochs", "3"]
    assert plan.env["CB_MODEL_DIR"] == "/opt/ml/model"
    assert plan.env["CB_INPUT_TRAINING"] == "/opt/ml/input/data/training"
    assert "ACCELERATE_USE_CPU" not in plan.env  # GPUs present


def test_vertex_torchrun_argv_for_console_script() -> None:
    ctx = replace(RuntimeContext.detect(VERTEX_ENV, gpu_count=2), distribution="torchrun")
    plan = build_launch(ctx, ["cloudbridge-finetune", "--task", "text-classification"], python=PY, which=_which)
    assert plan.argv[:3] == [PY, "-m", "torch.distributed.run"]
    assert (_flag(plan.argv, "--nnodes"), _flag(plan.argv, "--nproc_per_node"), _flag(plan.argv, "--node_rank")) == (
        "3", "2", "1")
    assert _flag(plan.argv, "--master_addr") == "cmle-training-workerpool0-ab123cd4e5-0"
    assert _flag(plan.argv, "--master_port") == "2222"
    # not found by the fake `which` as a python file -> run as an executable
    assert "--no-python" in plan.argv and plan.argv[-3] == "/venv/bin/cloudbridge-finetune"


def test_console_script_with_python_shebang_runs_as_script(tmp_path: Path) -> None:
    script = tmp_path / "my-tool"
    script.write_text("#!/usr/bin/env python3\nprint('hi')\n")
    program = split_program(["my-tool", "-x"], which=lambda name: str(script))
    assert (program.kind, program.target, program.args) == ("script", str(script), ("-x",))
    ctx = RuntimeContext.detect(LOCAL_ENV)
    ctx = replace(ctx, distribution="accelerate")
    plan = build_launch(ctx, ["my-tool", "-x"], python=PY, which=lambda name: str(script))
    assert "--no_python" not in plan.argv and plan.argv[-2:] == [str(script), "-x"]
    assert plan.env["ACCELERATE_USE_CPU"] == "true"  # CPU node: workers form a gloo group


def test_python_module_and_shell_string() -> None:
    ctx = RuntimeContext.detect(LOCAL_ENV)  # torchrun, 2 processes
    plan = build_launch(ctx, ["python -u -m mypkg.train --lr 3"], python=PY)
    assert plan.argv[-4:] == ["-m", "mypkg.train", "--lr", "3"]
    ctx = replace(ctx, distribution="accelerate")
    plan = build_launch(ctx, ["python", "-m", "mypkg.train"], python=PY)
    assert plan.argv[-2:] == ["--module", "mypkg.train"]


def test_azureml_workers_already_launched_run_directly() -> None:
    ctx = RuntimeContext.detect(AZUREML_ENV, gpu_count=0)
    plan = build_launch(ctx, ["python", "train.py"], python=PY)
    assert plan.launcher == "direct" and plan.argv == [PY, "train.py"]


def test_single_process_and_distribution_none_run_directly() -> None:
    ctx = RuntimeContext.detect({}, gpu_count=0)
    assert build_launch(ctx, ["python", "train.py"], python=PY).launcher == "direct"
    ctx = replace(RuntimeContext.detect(LOCAL_ENV), distribution="none")
    assert build_launch(ctx, ["python", "train.py"], python=PY).argv == [PY, "train.py"]  # an argv: as given
    plan = build_launch(ctx, ["train.py"], python=PY)  # one string is the run line: bash, as on every platform
    assert plan.launcher == "bash" and plan.argv[1:] == ["-c", "train.py"]


def test_unknown_command_is_a_user_error() -> None:
    with pytest.raises(UserError, match="command not found: no-such-tool"):
        split_program(["no-such-tool"], which=lambda name: None)
    with pytest.raises(UserError, match="no command"):
        split_program([])


def test_dry_run_cli_prints_the_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CB_", "SM_", "RANK", "WORLD_SIZE"))}
    env.update(CB_OUTPUT_DIR=str(tmp_path), CB_NUM_PROCESSES="4", MASTER_PORT="29999")
    out = subprocess.run([*LAUNCH, "--dry-run", "--", "python", "train.py"], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert "accelerate.commands.launch" in out and "--num_processes 4" in out and "--main_process_port 29999" in out
    ctx = json.loads(subprocess.run([*LAUNCH, "--print-context"], env=env, capture_output=True, text=True,
                                    check=True).stdout)
    assert ctx["platform"] == "local" and ctx["processes_per_node"] == 4


@pytest.mark.slow
@pytest.mark.parametrize("distribution", ["accelerate", "torchrun"])
def test_two_gloo_processes_on_cpu(tmp_path: Path, distribution: str) -> None:
    """A real all-reduce across 2 CPU processes started by cloudbridge-launch."""
    script = tmp_path / "allreduce.py"
    script.write_text(textwrap.dedent("""
        import json, os
        from accelerate import Accelerator
        import torch
        acc = Accelerator()
        total = acc.reduce(torch.tensor([acc.process_index + 1.0]), "sum").item()
        out = os.path.join(os.environ["CB_OUTPUT_DIR"], f"rank{acc.process_index}.json")
        json.dump({"rank": os.environ["RANK"], "world": acc.num_processes, "sum": total,
                   "type": str(acc.distributed_type), "backend": acc.state.backend}, open(out, "w"))
        acc.end_training()  # destroys the process group: gloo threads must not outlive the interpreter
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CB_", "SM_", "RANK", "WORLD_SIZE"))}
    env.update(CB_OUTPUT_DIR=str(tmp_path), CB_NUM_PROCESSES="2", CB_DISTRIBUTION=distribution)
    subprocess.run([*LAUNCH, "--", "python", str(script)], env=env, check=True, timeout=180, cwd=tmp_path)
    results = [json.loads((tmp_path / f"rank{i}.json").read_text()) for i in range(2)]
    assert sorted(r["rank"] for r in results) == ["0", "1"]
    assert all(r["world"] == 2 and r["sum"] == 3.0 and r["backend"] == "gloo" for r in results)
    assert all(r["type"].endswith("MULTI_CPU") for r in results)
