"""cloudbridge emulate: each platform's env and layout (pure), then real 2-process runs under all three."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_training import TINY_CONFIG, clean_env, write_classification

from cloudbridge.emulate import plan_emulation
from cloudbridge.errors import UserError
from cloudbridge.runtime import RuntimeContext
from cloudbridge.specs import load_job_spec

CLI = [sys.executable, "-m", "cloudbridge.cli"]


def _job(tmp_path: Path, nodes: int = 1) -> Path:
    write_classification(tmp_path / "data")
    (tmp_path / "train_helper.py").write_text("# shipped with the code\n")
    (tmp_path / ".cloudbridgeignore").write_text("data/\n")
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "name: tiny-emulate\n"
        "workdir: .\n"
        "run: >-\n"
        f"  cloudbridge-finetune --task text-classification --model-config '{TINY_CONFIG}'\n"
        "  --epochs 2 --batch-size 8 --learning-rate 3e-3 --log-steps 5\n"
        "distribution: accelerate\n"
        f"resources: {{nodes: {nodes}}}\n"
        "inputs: {train: ./data}\n"
        "env: {HF_HUB_OFFLINE: '1'}\n"
    )
    return spec


def test_sagemaker_layout_and_env(tmp_path: Path) -> None:
    spec = load_job_spec(_job(tmp_path / "job", nodes=2))
    root = tmp_path / "root"
    layout = plan_emulation(spec, "sagemaker", str(root), port=29555)
    assert [n.name for n in layout.nodes] == ["algo-1", "algo-2"]
    node = layout.nodes[1]
    ml = root / "algo-2" / "opt/ml"
    assert json.loads(node.env["SM_HOSTS"]) == ["algo-1", "algo-2"] and node.env["SM_CURRENT_HOST"] == "algo-2"
    assert node.env["SM_CHANNEL_TRAIN"] == str(ml / "input/data/train")
    assert (ml / "input/data/train/train.csv").is_file() and (ml / "code/workdir/train_helper.py").is_file()
    assert not (ml / "code/workdir/data").exists()  # inputs are channels, not code
    config = json.loads((ml / "input/config/resourceconfig.json").read_text())
    assert config["current_host"] == "algo-2" and config["hosts"] == ["algo-1", "algo-2"]
    ctx = RuntimeContext.detect(node.env, gpu_count=0)
    assert (ctx.platform, ctx.node_rank, ctx.num_nodes, ctx.processes_per_node) == ("sagemaker", 1, 2, 2)
    assert ctx.checkpoint_dir == str(ml / "checkpoints") and ctx.model_dir == str(ml / "model")
    assert (ctx.master_addr, ctx.master_port) == ("127.0.0.1", 29555)


def test_vertex_layout_and_env(tmp_path: Path) -> None:
    spec = load_job_spec(_job(tmp_path / "job", nodes=3))
    root = tmp_path / "root"
    layout = plan_emulation(spec, "vertex", str(root), port=29556)
    specs = [json.loads(n.env["CLUSTER_SPEC"]) for n in layout.nodes]
    assert [s["task"] for s in specs] == [{"type": "workerpool0", "index": 0}, {"type": "workerpool1", "index": 0},
                                          {"type": "workerpool1", "index": 1}]
    assert len(specs[0]["cluster"]["workerpool1"]) == 2
    env = layout.nodes[2].env
    assert env["AIP_MODEL_DIR"].startswith("gs://cb-emulate/") and env["CB_INPUT_TRAIN"].startswith("gs://")
    ctx = RuntimeContext.detect(env, gpu_count=0)
    assert (ctx.platform, ctx.node_rank, ctx.num_nodes) == ("vertex", 2, 3)
    assert ctx.model_dir.startswith(str(root / "gcs/cb-emulate")) and ctx.model_dir.endswith("/model")
    assert Path(ctx.input_dirs["train"], "train.csv").is_file()  # read through the emulated /gcs mount


def test_azureml_layout_and_env(tmp_path: Path) -> None:
    spec = load_job_spec(_job(tmp_path / "job"))
    layout = plan_emulation(spec, "azureml", str(tmp_path / "root"), processes=2, port=29557)
    assert [(n.env["RANK"], n.env["LOCAL_RANK"], n.env["WORLD_SIZE"]) for n in layout.nodes] == [
        ("0", "0", "2"), ("1", "1", "2")]
    node = layout.nodes[1]
    assert node.cwd.endswith("/exe/wd") and "/mnt/azureml/cr/j/" in node.cwd
    assert Path(node.env["AZURE_ML_INPUT_train"], "train.csv").is_file()
    ctx = RuntimeContext.detect(node.env, gpu_count=0)
    assert ctx.platform == "azureml" and ctx.is_launched and ctx.rank == 1


def test_unknown_platform_and_bad_spec(tmp_path: Path) -> None:
    spec = load_job_spec(_job(tmp_path / "job"))
    with pytest.raises(UserError, match="choose one of sagemaker, vertex, azureml"):
        plan_emulation(spec, "openstack", str(tmp_path / "root"))
    proc = subprocess.run([*CLI, "emulate", str(tmp_path / "missing.yaml"), "--as", "sagemaker"],
                          capture_output=True, text=True, env=clean_env())
    assert proc.returncode == 2 and "missing.yaml: file not found" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("platform", ["sagemaker", "vertex", "azureml"])
def test_emulated_two_process_fine_tune(tmp_path: Path, platform: str) -> None:
    spec = _job(tmp_path / "job")
    root = tmp_path / "root"
    proc = subprocess.run([*CLI, "emulate", str(spec), "--as", platform, "--root", str(root), "--json"],
                          capture_output=True, text=True, env=clean_env(), timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout[proc.stdout.index("{\n"):])
    assert result["exit_code"] == 0 and result["root"] == str(root)
    model_dir, output_dir = Path(result["model_dir"]), Path(result["output_dir"])
    where = {  # where each platform's contract puts the model
        "sagemaker": str(root / "algo-1/opt/ml/model"),
        "vertex": str(root / "gcs/cb-emulate/"),
        "azureml": str(root / "mnt/azureml/cr/j/"),
    }[platform]
    assert str(model_dir).startswith(where), model_dir
    assert (model_dir / "config.json").is_file() and (model_dir / "tokenizer.json").is_file()
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["num_processes"] == 2 and metrics["global_step"] == 20
    sealed = [p for p in Path(result["checkpoint_dir"]).glob("step-*") if (p / "COMPLETE").is_file()]
    assert sealed, os.listdir(result["checkpoint_dir"])
