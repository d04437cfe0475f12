"""The shipped fine-tuning examples, run as a user runs them: ``cloudbridge run job.yaml`` on ``local``.

Each example is copied to a temporary directory and its ``job.yaml`` run unchanged except for flags
appended to its ``run:`` command that shrink the workload (argparse keeps the last value of a
repeated option), so the real pretrained MiniLM, the real CLI, the real local backend and 2 gloo
processes all take part, in well under a minute per example.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fixtures_training import BIN, clean_env

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
REDUCED = ("--max-train-samples", "128", "--max-eval-samples", "64", "--epochs", "1")
CLI = [sys.executable, "-m", "cloudbridge.cli"]


def _example(name: str, tmp_path: Path, *extra: str) -> Path:
    """A copy of ``examples/<name>`` whose job runs with ``extra`` flags appended; returns its job.yaml."""
    dst = tmp_path / name
    shutil.copytree(EXAMPLES / name, dst)
    job = dst / "job.yaml"
    spec = yaml.safe_load(job.read_text(encoding="utf-8"))
    assert spec["provider"] == "local" and spec["resources"]["processes"] == 2
    spec["run"] = " ".join([spec["run"], *extra])
    job.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return job


def _cloudbridge_run(job: Path) -> tuple[dict, str]:
    """``cloudbridge run JOB --json`` as a subprocess: (the job record, the streamed logs)."""
    proc = subprocess.run([*CLI, "run", str(job), "--json"], capture_output=True, text=True, cwd=job.parent,
                          env=clean_env(), timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    record = json.loads(proc.stdout)
    assert record["state"] == "SUCCEEDED" and record["provider"] == "local", record
    return record, proc.stderr


def test_sentiment_example_then_fine_tune_from_its_saved_model(tmp_path: Path) -> None:
    record, logs = _cloudbridge_run(_example("finetune-sentiment", tmp_path, *REDUCED))
    assert "platform=local node 1/1 processes=2 via accelerate" in logs
    assert "model=minilm processes=2 train=128 eval=64 labels=2" in logs
    accuracy = record["metrics"]["accuracy"]
    assert isinstance(accuracy, float) and 0.0 <= accuracy <= 1.0
    model_dir = Path(record["extra"]["job_dir"]) / "model"
    metrics = json.loads((Path(record["extra"]["job_dir"]) / "output" / "metrics.json").read_text())
    assert metrics["final"]["accuracy"] == accuracy and metrics["num_processes"] == 2

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert model.config.hidden_size == 384 and tokenizer.is_fast  # MiniLM-L6's width and its fast tokenizer

    # The from_pretrained branch: continue from that directory with a zero learning rate. Its weights
    # (head included: same labels) are loaded as saved, so evaluation on the same 64 reviews must agree.
    out = tmp_path / "continued"
    data = tmp_path / "finetune-sentiment" / "data"
    cmd = [str(Path(BIN) / "cloudbridge-finetune"), "--task", "text-classification", "--model", str(model_dir),
           "--train", str(data), "--max-train-samples", "16", "--max-eval-samples", "64", "--epochs", "1",
           "--max-seq-len", "40", "--learning-rate", "0", "--output-dir", str(out), "--model-dir",
           str(out / "model"), "--checkpoint-dir", str(out / "ckpt")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"model={model_dir}" in proc.stdout
    again = json.loads((out / "metrics.json").read_text())["final"]
    assert again["accuracy"] == accuracy
    assert again["eval_loss"] == pytest.approx(metrics["final"]["eval_loss"], rel=1e-3)


def test_ner_example_prints_the_per_tag_table(tmp_path: Path) -> None:
    record, logs = _cloudbridge_run(_example("finetune-ner", tmp_path, *REDUCED))
    assert "model=minilm processes=2 train=128 eval=64" in logs
    table = logs[logs.rindex("precision    recall  f1-score   support"):]
    rows = {line.split()[0] for line in table.splitlines()[1:] if line.strip()}
    assert {"LOC", "MISC", "ORG", "PER"} <= rows
    for tag in ("LOC", "MISC", "ORG", "PER"):
        row = next(line.split() for line in table.splitlines() if line.split()[:1] == [tag])
        precision, recall, f1, support = map(float, row[1:5])
        assert all(0.0 <= v <= 1.0 for v in (precision, recall, f1)) and support > 0
    final = json.loads((Path(record["extra"]["job_dir"]) / "output" / "metrics.json").read_text())["final"]
    assert set(final["entities"]) == {"LOC", "MISC", "ORG", "PER"}
    assert 0.0 <= record["metrics"]["f1"] <= 1.0
