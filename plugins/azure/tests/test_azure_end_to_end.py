"""End to end: ``examples/finetune-sentiment`` with ``provider: azure`` and ``nodes: 2`` trains for real on
the Azure ML fake (two nodes, one process each, gloo DDP across them), reading its data from and writing
its model to Azurite (``az://``). Kept small: a tiny model from a config, 48 reviews, one epoch.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from cloudbridge.records import JobState
from cloudbridge.specs import load_job_spec
from cloudbridge.testing.azurite import ACCOUNT

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "finetune-sentiment"
TINY = json.dumps({"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                   "intermediate_size": 64, "vocab_size": 500})


@pytest.mark.slow
def test_sentiment_example_trains_on_two_azure_nodes(fake_provider: Any, container: str, tmp_path: Path) -> None:
    if not (EXAMPLE / "job.yaml").exists():
        pytest.skip("examples/finetune-sentiment is not in this checkout")
    work = tmp_path / "sentiment"
    shutil.copytree(EXAMPLE, work)
    (work / ".cloudbridgeignore").write_text("data/\n")
    base = f"az://{ACCOUNT}/{container}/e2e-{uuid.uuid4().hex[:6]}"
    storage = fake_provider.storage
    for name in ("train.csv", "test.csv"):
        storage.upload(work / "data" / name, f"{base}/data/{name}")
    spec = yaml.safe_load((work / "job.yaml").read_text())
    spec.update(provider="azure", inputs={"train": f"{base}/data"}, outputs={"model": f"{base}/model"},
                resources={"nodes": 2, "processes": 1, "max_runtime": "20m"})
    spec["run"] = (f"cloudbridge-finetune --task text-classification --model-config '{TINY}' --epochs 1 "
                   "--batch-size 8 --max-seq-len 32 --learning-rate 3e-3 --log-steps 2 "
                   "--max-train-samples 48 --max-eval-samples 16")
    (work / "job.azure.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    job = fake_provider.compute.submit(load_job_spec(work / "job.azure.yaml"))
    done = fake_provider.compute.wait(job.id, timeout=600)
    logs = "\n".join(fake_provider.compute.logs(job.id))
    assert done.state == JobState.SUCCEEDED, f"{done.detail}\n{logs[-3000:]}"
    assert "platform=azureml node 1/2" in logs and "platform=azureml node 2/2" in logs
    model = {info.key for info in storage.list(f"{base}/model")}
    assert "config.json" in model and any(k.endswith((".safetensors", ".bin")) for k in model), model
    config = json.loads(storage.read_bytes(f"{base}/model/config.json"))
    assert config["hidden_size"] == 32 and config["id2label"] == {"0": "negative", "1": "positive"}
    assert done.outputs_uri and done.outputs_uri.endswith("/model")
