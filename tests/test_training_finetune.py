"""cloudbridge-finetune end to end: outputs, NER table, checkpoints, exact resume after a kill, cloudbridge run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures_training import BIN, TINY_CONFIG, clean_env, finetune_args, write_classification, write_ner

FINETUNE = [sys.executable, "-m", "cloudbridge.training.cli"]
LAUNCH = [sys.executable, "-m", "cloudbridge.runtime.launch", "--", os.path.join(BIN, "cloudbridge-finetune")]


def _finetune(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*FINETUNE, *args], capture_output=True, text=True, env=clean_env(**env), timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_single_process_outputs(tmp_path: Path) -> None:
    data = write_classification(tmp_path / "d")
    out = tmp_path / "o"
    metrics_file = tmp_path / "job-metrics.json"
    proc = _finetune(finetune_args(data, out, "--epochs", "4"), CB_METRICS_FILE=str(metrics_file))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["global_step"] == 4 * 20 and len(metrics["epochs"]) == 4
    assert metrics["final"]["accuracy"] >= 0.9, proc.stdout  # the adjective decides: learnable
    assert metrics["train_samples_per_second"] > 0 and metrics["resumed_from_step"] is None
    assert json.loads(metrics_file.read_text())["accuracy"] == metrics["final"]["accuracy"]
    assert "eval epoch 4: eval_loss=" in proc.stdout
    # the model directory is a plain Hugging Face checkpoint
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(out / "model")
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    assert model.config.id2label == {0: "neg", 1: "pos"} and tokenizer("the plot was good")["input_ids"][0] == 2
    # the series: train loss every 5 steps, the eval metrics once per epoch, as TensorBoard scalars too
    from cloudbridge.metrics import read_history

    history = read_history(out / "metrics.jsonl")
    assert [step for step, _ in history.series("loss")] == list(range(5, 81, 5))
    assert [epoch for epoch, _ in history.per_epoch("accuracy")] == [1.0, 2.0, 3.0, 4.0]
    assert history.latest()["accuracy"] == metrics["final"]["accuracy"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tb")).Reload()
    assert [e.step for e in events.Scalars("loss")] == list(range(5, 81, 5))
    assert events.Scalars("accuracy")[-1].value == pytest.approx(metrics["final"]["accuracy"])
    sealed = sorted(p.name for p in (out / "ckpt").iterdir())
    assert sealed == ["step-000060"] or sealed == ["step-000040", "step-000060"]
    assert (out / "ckpt" / sealed[-1] / "COMPLETE").is_file()


def test_ner_prints_the_conll_table(tmp_path: Path) -> None:
    data = write_ner(tmp_path / "ner")
    out = tmp_path / "o"
    args = finetune_args(data, out, "--epochs", "3", "--learning-rate", "5e-3")
    args[args.index("text-classification")] = "token-classification"
    proc = _finetune(args)
    table = proc.stdout[proc.stdout.rindex("precision    recall  f1-score   support"):]
    for tag in ("LOC", "MISC", "ORG", "PER", "micro avg"):
        assert tag in table
    final = json.loads((out / "metrics.json").read_text())["final"]
    assert set(final["entities"]) == {"LOC", "MISC", "ORG", "PER"}
    assert final["f1"] > 0.5 and final["entities"]["PER"]["support"] == 30
    from cloudbridge.metrics import read_history

    per_tag = read_history(out / "metrics.jsonl").tables["ner_per_tag"]
    assert per_tag["epoch"] == 3 and per_tag["rows"] == final["entities"]


def test_corrupt_newest_checkpoint_falls_back_with_a_warning(tmp_path: Path) -> None:
    data = write_classification(tmp_path / "d")
    out = tmp_path / "o"
    _finetune(finetune_args(data, out, "--epochs", "1", "--checkpoint-steps", "5", "--keep-checkpoints", "5"))
    ckpt = out / "ckpt"
    assert sorted(p.name for p in ckpt.iterdir()) == ["step-000005", "step-000010", "step-000015"]
    (ckpt / "step-000015" / "model.safetensors").write_bytes(b"truncated")  # sealed but corrupt
    (ckpt / ".tmp-step-000018").mkdir()  # a half-written one: never a candidate
    (ckpt / "step-000019").mkdir()  # no COMPLETE marker: never a candidate
    proc = _finetune(finetune_args(data, out, "--epochs", "2", "--checkpoint-steps", "5", "--keep-checkpoints", "5"))
    assert "warning: checkpoint" in proc.stdout and "step-000015 is corrupt" in proc.stdout
    assert "resuming from checkpoint step 10 (epoch 1, 10 batches into it)" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from_step"] == 10 and metrics["global_step"] == 40


def _launch(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*LAUNCH, *args], env=clean_env(CB_NUM_PROCESSES="2"), text=True, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.slow
def test_killed_two_process_job_resumes_and_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    data = write_classification(tmp_path / "d", n_train=320, n_test=40)
    common = ("--epochs", "3", "--batch-size", "4", "--checkpoint-steps", "5")
    full = _launch(finetune_args(data, tmp_path / "full", *common), tmp_path)
    full_out, _ = full.communicate(timeout=300)
    assert full.returncode == 0, full_out[-3000:]

    run = tmp_path / "run"
    victim = _launch(finetune_args(data, run, *common), tmp_path)
    deadline = time.monotonic() + 240
    while not (run / "ckpt" / "step-000010" / "COMPLETE").exists():
        assert victim.poll() is None and time.monotonic() < deadline, "job ended before it could be killed"
        time.sleep(0.02)
    os.killpg(victim.pid, signal.SIGKILL)  # the whole job, like a lost spot instance
    victim.wait()
    assert not (run / "metrics.json").exists()
    steps = sorted(int(p.name[5:]) for p in (run / "ckpt").glob("step-*") if (p / "COMPLETE").exists())
    assert steps and steps[-1] < 120

    again = _launch(finetune_args(data, run, *common), tmp_path)
    again_out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, again_out[-3000:]
    assert f"resuming from checkpoint step {steps[-1]}" in again_out
    first_step_logged = next(int(line.split()[1].split("/")[0]) for line in again_out.splitlines()
                             if line.startswith("step "))
    assert first_step_logged > steps[-1]  # the step counter continues
    a = json.loads((tmp_path / "full" / "metrics.json").read_text())
    b = json.loads((run / "metrics.json").read_text())
    assert b["resumed_from_step"] == steps[-1] and a["global_step"] == b["global_step"] == 120
    assert b["final"] == pytest.approx(a["final"], rel=1e-6, abs=1e-7)
    assert [e["accuracy"] for e in b["epochs"]] == [e["accuracy"] for e in a["epochs"]]


@pytest.mark.slow
def test_two_process_fine_tune_through_cloudbridge_run(tmp_path: Path) -> None:
    import cloudbridge as cb

    write_classification(tmp_path / "data")
    (tmp_path / "job.yaml").write_text(
        "name: tiny-ddp\n"
        "workdir: .\n"
        "run: >-\n"
        f"  cloudbridge-finetune --task text-classification --model-config '{TINY_CONFIG}' --epochs 4\n"
        "  --batch-size 4 --learning-rate 3e-3 --log-steps 5\n"
        "distribution: accelerate\n"
        "resources: {processes: 2, max_runtime: 10m}\n"
        "inputs: {train: ./data}\n"
        "env: {HF_HUB_OFFLINE: '1'}\n"
    )
    (tmp_path / ".cloudbridgeignore").write_text("data/\n")
    job = cb.run(str(tmp_path / "job.yaml"), provider="local")
    job.wait(timeout=300)
    logs = "\n".join(job.logs())
    assert job.state.value == "SUCCEEDED", logs[-3000:]
    assert "platform=local node 1/1 processes=2 via accelerate" in logs
    assert "processes=2 train=160 eval=40" in logs
    assert job.metrics["accuracy"] >= 0.9 and job.metrics["global_step"] == 80


@pytest.mark.slow
def test_cancelled_local_job_resumes_when_run_again(tmp_path: Path) -> None:
    """The product path: cb.run, cancel mid-training, cb.run the same spec, which picks up its checkpoints."""
    import cloudbridge as cb

    write_classification(tmp_path / "data", n_train=320)
    ckpt = tmp_path / "ckpt"
    (tmp_path / "job.yaml").write_text(
        "name: tiny-resume\n"
        "workdir: .\n"
        "run: >-\n"
        f"  cloudbridge-finetune --task text-classification --model-config '{TINY_CONFIG}' --epochs 3\n"
        "  --batch-size 4 --learning-rate 3e-3 --log-steps 5 --checkpoint-steps 5\n"
        "distribution: accelerate\n"
        "resources: {processes: 2, max_runtime: 10m}\n"
        "inputs: {train: ./data}\n"
        f"checkpoints: {ckpt}\n"
        "env: {HF_HUB_OFFLINE: '1'}\n"
    )
    (tmp_path / ".cloudbridgeignore").write_text("data/\nckpt/\n")
    first = cb.run(str(tmp_path / "job.yaml"), provider="local")
    deadline = time.monotonic() + 240
    while not (ckpt / "step-000010" / "COMPLETE").exists():
        assert not first.refresh().done and time.monotonic() < deadline, "\n".join(first.logs())[-3000:]
        time.sleep(0.05)
    first.cancel()
    assert first.wait(timeout=60).state.value == "CANCELLED"
    sealed = max(int(p.name[5:]) for p in ckpt.glob("step-*") if (p / "COMPLETE").exists())
    assert sealed < 120

    second = cb.run(str(tmp_path / "job.yaml"), provider="local")
    second.wait(timeout=300)
    logs = "\n".join(second.logs())
    assert second.state.value == "SUCCEEDED", logs[-3000:]
    assert f"resuming from checkpoint step {sealed}" in logs
    assert second.metrics["global_step"] == 120
