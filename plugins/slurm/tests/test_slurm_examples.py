"""examples/finetune-sentiment on Slurm, as a user runs it: `provider: slurm` trains (tiny: a 1-layer model
from a config, 128 samples, 2 processes) and the model comes back; `cloudbridge migrate --to slurm` stages
what the job reads."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cloudbridge_slurm.localcluster import LocalCluster

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "finetune-sentiment"
CLI = [sys.executable, "-m", "cloudbridge.cli"]


def _env(cluster: LocalCluster, staging: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CB_", "MASTER_", "RANK", "WORLD_SIZE"))}
    env.update(NO_COLOR="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", CLOUDBRIDGE_HOME=str(home),
               SLURM_CONF=str(cluster.conf), CLOUDBRIDGE_SLURM_STAGING_DIR=str(staging),
               CLOUDBRIDGE_SLURM_NODE_LOCAL='["/dev/shm"]', CLOUDBRIDGE_SLURM_POLL_INTERVAL="0.5",
               CLOUDBRIDGE_SLURM_SETUP=f"export PATH={shlex.quote(os.path.dirname(sys.executable))}:$PATH")
    return env


def _copy_example(tmp_path: Path, provider: str) -> Path:
    dst = tmp_path / "finetune-sentiment"
    shutil.copytree(EXAMPLE, dst, ignore=shutil.ignore_patterns("outputs"))
    spec = yaml.safe_load((dst / "job.yaml").read_text())
    spec["provider"] = provider
    # tiny: a 1-layer BERT from a config (random init; --model-config wins over --model), 128 samples
    (dst / "tiny.json").write_text(json.dumps({"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                               "intermediate_size": 64, "vocab_size": 500}))
    spec["run"] += " --model-config tiny.json --max-train-samples 128 --max-eval-samples 64 --epochs 1"
    (dst / "job.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return dst / "job.yaml"


def test_finetune_sentiment_trains_on_slurm_and_the_model_comes_back(slurm_cluster: LocalCluster,
                                                                     staging_root: Path, tmp_path: Path) -> None:
    job = _copy_example(tmp_path, "slurm")
    proc = subprocess.run([*CLI, "run", str(job), "--json"], capture_output=True, text=True, timeout=600,
                          env=_env(slurm_cluster, staging_root / "example", tmp_path / "home"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    record = json.loads(proc.stdout)
    assert record["state"] == "SUCCEEDED" and record["provider"] == "slurm", record
    assert "platform=slurm node 1/1 processes=2 via accelerate" in proc.stderr
    assert isinstance(record["metrics"].get("accuracy"), float), record["metrics"]
    model = job.parent / "outputs" / "model"
    config = json.loads((model / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"} and config["hidden_size"] == 32
    assert list(model.glob("*.safetensors")), sorted(p.name for p in model.iterdir())


def test_migrate_to_slurm_stages_the_inputs(slurm_cluster: LocalCluster, staging_root: Path, tmp_path: Path) -> None:
    job = _copy_example(tmp_path, "local")
    staging = staging_root / "migrate"
    env = _env(slurm_cluster, staging, tmp_path / "home")
    proc = subprocess.run([*CLI, "migrate", str(job), "--to", "slurm", "--json"], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    prefix = plan["prefix"]  # <name>-<8 hex of the project's workdir>
    assert prefix.startswith("slurm://staging/cloudbridge/finetune-sentiment-"), prefix
    project = prefix.rsplit("/", 1)[1]
    staged = staging / "cloudbridge" / project / "inputs" / "train"
    assert sorted(p.name for p in staged.iterdir()) == ["test.csv", "train.csv"]
    assert (staged / "train.csv").read_bytes() == (job.parent / "data" / "train.csv").read_bytes()
    migrated = yaml.safe_load((job.parent / "job.slurm.yaml").read_text())
    assert migrated["provider"] == "slurm"
    assert migrated["inputs"] == {"train": f"{prefix}/inputs/train"}
    again = subprocess.run([*CLI, "migrate", str(job), "--to", "slurm", "--json"], capture_output=True, text=True,
                           timeout=300, env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["upload_bytes"] == 0, "unchanged data is not re-sent"
