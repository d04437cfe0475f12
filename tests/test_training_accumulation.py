"""Gradient accumulation and bf16 autocast: optimizer steps per epoch, and a kill + resume mid-accumulation.

The optimizer's own state is the witness: AdamW counts its real updates in ``state[p]["step"]``, which
``accelerator.save_state`` writes to every checkpoint's ``optimizer.bin``; the LR scheduler's
``last_epoch`` (``custom_checkpoint_0.pkl``) counts them too.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures_training import clean_env, finetune_args, write_classification

FINETUNE = [sys.executable, "-m", "cloudbridge.training.cli"]


def optimizer_steps(checkpoint: Path) -> set[int]:
    """The update counts AdamW recorded for every parameter in ``checkpoint`` (one value when consistent)."""
    import torch

    state = torch.load(checkpoint / "optimizer.bin", map_location="cpu", weights_only=True)["state"]
    return {int(entry["step"]) for entry in state.values()}


def scheduler_steps(checkpoint: Path) -> int:
    """How many times the LR scheduler stepped before ``checkpoint`` was written."""
    import torch

    # accelerate writes registered objects with torch.save; the scheduler state holds plain Python values
    state = torch.load(checkpoint / "custom_checkpoint_0.pkl", map_location="cpu", weights_only=False)
    return int(state["last_epoch"])


def sealed(ckpt: Path) -> list[int]:
    """Steps of the sealed checkpoints in ``ckpt``."""
    return sorted(int(p.name[5:]) for p in ckpt.glob("step-*") if (p / "COMPLETE").exists())


def test_accumulation_two_with_bf16_steps_the_optimizer_ceil_half_the_batches(tmp_path: Path) -> None:
    data = write_classification(tmp_path / "d", n_train=168, n_test=40)  # 21 batches of 8: odd on purpose
    out = tmp_path / "o"
    args = finetune_args(data, out, "--epochs", "2", "--gradient-accumulation-steps", "2",
                         "--mixed-precision", "bf16", "--keep-checkpoints", "5", "--log-steps", "1")
    proc = subprocess.run([*FINETUNE, *args], capture_output=True, text=True, env=clean_env(), timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    per_epoch = math.ceil(21 / 2)  # the last, lone batch of an epoch still makes an update
    assert "steps=22 accumulation=2 precision=bf16" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mixed_precision"] == "bf16" and metrics["gradient_accumulation_steps"] == 2
    assert metrics["global_step"] == 2 * per_epoch
    assert [e["step"] for e in metrics["epochs"]] == [per_epoch, 2 * per_epoch]
    assert metrics["train_samples"] == 2 * 168  # every batch was trained on, none dropped
    logged = [int(line.split()[1].split("/")[0]) for line in proc.stdout.splitlines() if line.startswith("step ")]
    assert logged == list(range(1, 2 * per_epoch + 1))
    # the end-of-epoch checkpoint: AdamW and the scheduler stepped exactly ceil(21 / 2) times
    assert sealed(out / "ckpt") == [per_epoch]
    assert optimizer_steps(out / "ckpt" / f"step-{per_epoch:06d}") == {per_epoch}
    assert scheduler_steps(out / "ckpt" / f"step-{per_epoch:06d}") == per_epoch
    assert 0.0 <= metrics["final"]["accuracy"] <= 1.0 and math.isfinite(metrics["final"]["eval_loss"])


def _start(data: Path, out: Path, cwd: Path) -> subprocess.Popen[str]:
    args = finetune_args(data, out, "--epochs", "2", "--batch-size", "4", "--gradient-accumulation-steps", "2",
                         "--checkpoint-steps", "5", "--keep-checkpoints", "3")
    return subprocess.Popen([*FINETUNE, *args], env=clean_env(), text=True, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.slow
def test_killed_run_with_accumulation_resumes_at_the_right_step(tmp_path: Path) -> None:
    # 404 examples in batches of 4: 101 batches, 51 optimizer steps per epoch, 102 in all
    data = write_classification(tmp_path / "d", n_train=404, n_test=40)
    full = _start(data, tmp_path / "full", tmp_path)
    full_out, _ = full.communicate(timeout=300)
    assert full.returncode == 0, full_out[-3000:]

    run = tmp_path / "run"
    victim = _start(data, run, tmp_path)
    deadline = time.monotonic() + 240
    while not (run / "ckpt" / "step-000010" / "COMPLETE").exists():
        assert victim.poll() is None and time.monotonic() < deadline, "job ended before it could be killed"
        time.sleep(0.01)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    assert not (run / "metrics.json").exists()
    resume_step = sealed(run / "ckpt")[-1]
    assert 10 <= resume_step < 102

    again = _start(data, run, tmp_path)
    again_out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, again_out[-3000:]
    epoch = 1 if resume_step < 51 else 2
    batches = 2 * (resume_step - 51 * (epoch - 1))  # two batches per update, counted from the epoch start
    if batches == 0:  # sealed at the end of epoch 1: resumes at the start of epoch 2
        assert f"resuming from checkpoint step {resume_step} (epoch 2, 0 batches into it)" in again_out
    else:
        assert f"resuming from checkpoint step {resume_step} (epoch {epoch}, {batches} batches into it)" in again_out
    first = next(int(line.split()[1].split("/")[0]) for line in again_out.splitlines() if line.startswith("step "))
    assert resume_step < first <= resume_step + 5  # --log-steps 5: the counter continues, nothing is replayed

    a = json.loads((tmp_path / "full" / "metrics.json").read_text())
    b = json.loads((run / "metrics.json").read_text())
    assert a["global_step"] == b["global_step"] == 102 and b["resumed_from_step"] == resume_step
    assert b["final"] == pytest.approx(a["final"], rel=1e-6, abs=1e-7)
    # every checkpoint the resumed run wrote holds exactly as many optimizer updates as its step number
    later = [s for s in sealed(run / "ckpt") if s > resume_step]
    assert later
    for step in later:
        assert optimizer_steps(run / "ckpt" / f"step-{step:06d}") == {step}
        assert scheduler_steps(run / "ckpt" / f"step-{step:06d}") == step
    assert sealed(run / "ckpt") == sealed(tmp_path / "full" / "ckpt")

