"""`cloudbridge metrics`, the METRIC column of `jobs`, `cloudbridge tensorboard` and the dashboard's bad input.

The jobs are real local jobs running a small script that records its series with ``log_metrics``
(no torch: fast); the fine-tune itself is exercised in test_training_finetune and the browser tests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from fixtures_cli import assert_one_error_line, run_cli
from fixtures_local import local_compute, spec, wait_until

from cloudbridge.records import JobState

LOGGER = textwrap.dedent(
    """
    import os, sys, time
    from cloudbridge.runtime import log_metrics
    for step in range(1, 13):
        log_metrics(step=step, epoch=(step - 1) // 4 + 1, loss=round(2.0 / step, 4))
        if step % 4 == 0:
            log_metrics(step=step, epoch=step // 4, accuracy=0.5 + step / 40, eval_loss=1.0 / step)
    gate = os.environ.get("GATE")
    while gate and not os.path.exists(gate):
        time.sleep(0.05)
    print("done")
    """
)


def _job(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, run: str, **env: str):
    compute = local_compute(monkeypatch)
    work = tmp_path / name
    work.mkdir()
    (work / "logger.py").write_text(LOGGER)
    return compute, compute.submit(spec(work, run, name=name, env=env))


def test_metrics_table_chart_json_and_jobs_column(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute, first = _job(monkeypatch, tmp_path, "one", f"{sys.executable} logger.py")
    _, second = _job(monkeypatch, tmp_path, "two", f"{sys.executable} logger.py")
    for job in (first, second):
        assert compute.wait(job.id, 120).state is JobState.SUCCEEDED
    result = run_cli("metrics", first.id)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["METRIC", first.id]
    assert ["step", "12"] == lines[1].split() and ["accuracy", "0.8"] in [line.split() for line in lines]
    assert "loss per step" in result.stdout and "per epoch" in result.stdout and "* accuracy" in result.stdout
    # side by side
    both = run_cli("metrics", first.id, second.id)
    assert both.stdout.splitlines()[0].split() == ["METRIC", first.id, second.id]
    assert f"* {first.id}" in both.stdout and f"o {second.id}" in both.stdout
    data = json.loads(run_cli("metrics", first.id, "--json").stdout)
    assert [p["step"] for p in data[0]["points"] if "loss" in p["values"]] == list(range(1, 13))
    assert data[0]["latest"]["accuracy"] == 0.8
    table = run_cli("jobs").stdout
    assert "METRIC" in table.splitlines()[0] and "accuracy 0.8" in table


def test_running_job_is_read_incrementally(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import cloudbridge as cb

    gate = tmp_path / "gate"
    compute, job = _job(monkeypatch, tmp_path, "live", f"{sys.executable} logger.py", GATE=str(gate))
    try:
        live = wait_until(lambda: (j := cb.get_job(job.id)).metrics.get("step") == 12 and j, timeout=120)
        assert live.state is JobState.RUNNING and live.metrics["loss"] == 0.1667
        assert len(live.metric_history().series("loss")) == 12
        running = run_cli("metrics", job.id)
        assert "loss per step" in running.stdout
    finally:
        gate.touch()
    assert compute.wait(job.id, 60).state is JobState.SUCCEEDED
    assert cb.get_job(job.id).metrics["accuracy"] == 0.8  # kept on the record once it ended


def test_unknown_job_and_job_without_metrics(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert_one_error_line(run_cli("metrics", "local-00000000"), "local-00000000")
    assert_one_error_line(run_cli("tensorboard", "local-00000000"), "local-00000000")
    compute, job = _job(monkeypatch, tmp_path, "quiet", "echo nothing to say")
    compute.wait(job.id, 60)
    result = run_cli("metrics", job.id)
    assert result.returncode == 0
    assert result.stdout.strip() == (f"{job.id}: no metrics recorded; record them from the job with "
                                     "`from cloudbridge.runtime import log_metrics; log_metrics(step=step, "
                                     "epoch=epoch, loss=loss)` (cloudbridge-finetune does this itself)")
    assert "loss per step" not in result.stdout  # never an empty chart


def test_tensorboard_serves_the_job_and_stops_on_ctrl_c(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute, job = _job(monkeypatch, tmp_path, "tb", f"{sys.executable} logger.py")
    compute.wait(job.id, 120)
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cloudbridge.cli", "tensorboard", job.id], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"TensorBoard for {job.id}: http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split(": ", 1)[1].split(" ")[0]

        def runs() -> dict | None:
            try:
                with urllib.request.urlopen(url + "data/plugin/scalars/tags", timeout=2) as reply:
                    return json.loads(reply.read()) or None
            except OSError:
                return None

        tags = wait_until(runs, timeout=90, interval=0.5)
        run = next(name for name in tags if name.split("/")[0] == job.id)  # "<job id>/tb"
        assert {"loss", "accuracy", "eval_loss"} <= set(tags[run])
        os.kill(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "TensorBoard stopped" in out
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_tensorboard_missing_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    from cloudbridge.cli.main import main

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` now raises ImportError
    assert main(["tensorboard", "local-00000000"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: the tensorboard package is not installed; install it with: "
                   "pip install 'cloudbridge-ai[tensorboard]'")


def test_dashboard_port_in_use_is_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        started = time.monotonic()
        result = run_cli("dashboard", "--port", str(port))
    assert_one_error_line(result, f"port {port} on 127.0.0.1 is in use", "--port 0")
    assert time.monotonic() - started < 30
