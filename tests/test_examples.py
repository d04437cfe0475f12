"""The shipped fine-tuning examples, run as a user runs them: the README commands, on ``local``.

Each example is copied to ``<tmp>/examples/<name>`` and the commands of its README run from ``<tmp>``
exactly as written, its ``job.yaml`` unchanged except for flags appended to its ``run:`` command that
shrink the workload (argparse keeps the last value of a repeated option). The real pretrained
MiniLM, the real CLI, the real local backend and 2 gloo processes all take part, in well under a
minute per example.
"""

from __future__ import annotations

import json
import re
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
    dst = tmp_path / "examples" / name
    shutil.copytree(EXAMPLES / name, dst)
    job = dst / "job.yaml"
    spec = yaml.safe_load(job.read_text(encoding="utf-8"))
    assert spec["provider"] == "local" and spec["resources"]["processes"] == 2
    spec["run"] = " ".join([spec["run"], *extra])
    job.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return job


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``cloudbridge ARGS`` as a subprocess in ``cwd``."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=clean_env(), timeout=300)


def _cloudbridge_run(tmp_path: Path, name: str) -> tuple[dict, str]:
    """The README's ``cloudbridge run examples/<name>/job.yaml`` (+ ``--json``): (job record, streamed logs)."""
    proc = _cli(tmp_path, "run", f"examples/{name}/job.yaml", "--json")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    record = json.loads(proc.stdout)
    assert record["state"] == "SUCCEEDED" and record["provider"] == "local", record
    return record, proc.stderr


def test_sentiment_example_then_fine_tune_from_its_saved_model(tmp_path: Path) -> None:
    _example("finetune-sentiment", tmp_path, *REDUCED)
    record, logs = _cloudbridge_run(tmp_path, "finetune-sentiment")
    assert "platform=local node 1/1 processes=2 via accelerate" in logs
    assert "model=minilm processes=2 train=128 eval=64 labels=2" in logs
    accuracy = record["metrics"]["accuracy"]
    assert isinstance(accuracy, float) and 0.0 <= accuracy <= 1.0
    model_dir = tmp_path / "examples" / "finetune-sentiment" / "outputs" / "model"  # the spec's output channel
    assert record["outputs_uri"] == str(model_dir)
    metrics = json.loads((Path(record["extra"]["job_dir"]) / "output" / "metrics.json").read_text())
    assert metrics["final"]["accuracy"] == accuracy and metrics["num_processes"] == 2

    config = json.loads((model_dir / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["hidden_size"] == 384 and (model_dir / "tokenizer.json").is_file()  # MiniLM-L6, fast tokenizer
    # the directory reloads: the endpoint below and the continued fine-tune both load it with from_pretrained

    # The README's deploy / invoke / undeploy, as written
    deployed = _cli(tmp_path, "deploy", "examples/finetune-sentiment/outputs/model", "--name", "sentiment")
    try:
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        reply = _cli(tmp_path, "invoke", "sentiment", "--data", '{"inputs": "not bad at all, the staff were superb"}')
        assert reply.returncode == 0, reply.stdout + reply.stderr
        assert json.loads(reply.stdout)["predictions"][0]["label"] in ("negative", "positive"), reply.stdout
    finally:
        gone = _cli(tmp_path, "undeploy", "sentiment")
    assert gone.returncode == 0, gone.stdout + gone.stderr

    # The from_pretrained branch: continue from that directory with a zero learning rate. Its weights
    # (head included: same labels) are loaded as saved, so evaluation on the same 64 reviews must agree.
    out = tmp_path / "continued"
    data = tmp_path / "examples" / "finetune-sentiment" / "data"
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
    _example("finetune-ner", tmp_path, *REDUCED)
    record, logs = _cloudbridge_run(tmp_path, "finetune-ner")
    assert "model=minilm processes=2 train=128 eval=64" in logs
    table = logs[logs.rindex("precision    recall  f1-score   support"):]
    # a two-process job's lines carry their rank tag ("[rank0] "): the table is what follows it
    table = "\n".join(re.sub(r"^\[rank\d+\] ?", "", line) for line in table.splitlines())
    rows = {line.split()[0] for line in table.splitlines()[1:] if line.strip()}
    assert {"LOC", "MISC", "ORG", "PER"} <= rows
    for tag in ("LOC", "MISC", "ORG", "PER"):
        row = next(line.split() for line in table.splitlines() if line.split()[:1] == [tag])
        precision, recall, f1, support = map(float, row[1:5])
        assert all(0.0 <= v <= 1.0 for v in (precision, recall, f1)) and support > 0
    final = json.loads((Path(record["extra"]["job_dir"]) / "output" / "metrics.json").read_text())["final"]
    assert set(final["entities"]) == {"LOC", "MISC", "ORG", "PER"}
    assert 0.0 <= record["metrics"]["f1"] <= 1.0
    saved = tmp_path / "examples" / "finetune-ner" / "outputs" / "model"
    assert json.loads((saved / "config.json").read_text())["id2label"]["0"] == "O"
