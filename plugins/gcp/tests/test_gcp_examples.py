"""examples/finetune-sentiment on GCP, as a user runs it, through the real SDKs, the GCS emulator and the
Vertex AI fake: ``cloudbridge migrate --to gcp`` uploads the data, then ``provider: gcp`` with ``nodes: 2``
trains for real (tiny: 128 samples, 1 process per node, 2 worker pools) and the model lands in ``gs://``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "finetune-sentiment"
CLI = [sys.executable, "-m", "cloudbridge.cli"]


def _env(gcs: Any, vertex: Any, bucket: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CB_", "MASTER_", "RANK", "WORLD_SIZE"))}
    env.update(NO_COLOR="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", CLOUDBRIDGE_HOME=str(home),
               STORAGE_EMULATOR_HOST=gcs.endpoint, CLOUDBRIDGE_GCP_API_ENDPOINT=vertex.endpoint,
               CLOUDBRIDGE_GCP_PROJECT="cb-test-project", CLOUDBRIDGE_GCP_REGION="us-central1",
               CLOUDBRIDGE_GCP_STAGING_BUCKET=bucket, CLOUDBRIDGE_GCP_POLL_INTERVAL="0.5")
    return env


def _copy_example(tmp_path: Path) -> Path:
    dst = tmp_path / "finetune-sentiment"
    shutil.copytree(EXAMPLE, dst, ignore=shutil.ignore_patterns("outputs"))
    spec = yaml.safe_load((dst / "job.yaml").read_text())
    spec["run"] += " --max-train-samples 128 --max-eval-samples 64 --epochs 1"
    spec["resources"] = {"processes": 1, "max_runtime": "20m"}
    (dst / "job.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return dst / "job.yaml"


def test_finetune_sentiment_trains_on_vertex_with_two_nodes(gcs_env: Any, vertex: Any, bucket: str,
                                                            provider: Any, tmp_path: Path) -> None:
    vertex.hold = False
    job = _copy_example(tmp_path)
    env = _env(gcs_env, vertex, bucket, tmp_path / "home")
    migrated = subprocess.run([*CLI, "migrate", str(job), "--to", "gcp", "--json"], capture_output=True, text=True,
                              timeout=300, env=env)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    spec_path = job.parent / "job.gcp.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    train = spec["inputs"]["train"]
    assert spec["provider"] == "gcp" and train.startswith(f"gs://{bucket}/") and train.endswith("/inputs/train"), spec
    assert sorted(i.key for i in provider.storage.list(train)) == ["test.csv", "train.csv"]
    spec["resources"]["nodes"] = 2
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    proc = subprocess.run([*CLI, "run", str(spec_path), "--json"], capture_output=True, text=True, timeout=600,
                          env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    record = json.loads(proc.stdout)
    assert record["state"] == "SUCCEEDED" and record["provider"] == "gcp", record
    assert "platform=vertex node 1/2" in proc.stderr and "platform=vertex node 2/2" in proc.stderr, proc.stderr[-3000:]
    model = spec["outputs"]["model"] + "/model"
    store = provider.storage
    config = json.loads(store.read_bytes(f"{model}/config.json"))
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert store.exists(f"{model}/tokenizer.json") and store.exists(f"{model}/model.safetensors")
    # the series the fine-tune logged went to the job's gs:// outputs and comes back (issue 14.1 "every provider")
    metrics = subprocess.run([*CLI, "metrics", record["id"], "--json"], capture_output=True, text=True, timeout=180,
                             env=env)
    assert metrics.returncode == 0, metrics.stderr[-2000:]
    series = json.loads(metrics.stdout)[0]
    assert series["points"] and "accuracy" in series["latest"], series
