"""The CLI on AWS, as real processes against the moto server: `cloudbridge run` shows the workdir
package (size, file count, largest files, the over-100-MB warning) before it uploads anything, and
`cloudbridge status ID --wait` keeps reading a job -- which is when a cloud job's events fire."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from test_aws_sdk import write_job

CLI = [sys.executable, "-m", "cloudbridge.cli"]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "NO_COLOR": "1", **(env or {})})


def test_run_shows_the_package_and_the_size_warning_before_upload(aws_env: Any, bucket: str, tmp_path: Path) -> None:
    spec = write_job(tmp_path, bucket)
    with open(tmp_path / "proj" / "weights.bin", "wb") as handle:  # sparse: 101 MiB on paper, cheap to make
        handle.truncate(101 * 1024 * 1024)
    (tmp_path / "proj" / ".cloudbridgeignore").write_text("*.log\n")
    (tmp_path / "proj" / "debug.log").write_text("not shipped\n")

    result = _run("run", str(spec), "--detach")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    summary = next(i for i, line in enumerate(lines) if line.startswith("package: workdir "))
    assert f"{tmp_path / 'proj'}: 3 files, 101.0 MiB (1 ignored)" in lines[summary]
    assert lines[summary + 1].split() == ["101.0", "MiB", "weights.bin"], "largest entries listed"
    warnings = [line for line in lines if "weights.bin (101.0 MiB)" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: workdir "), "the warning once, as a warning line"
    assert "use inputs: or .cloudbridgeignore" in warnings[0]
    submitted = next(i for i, line in enumerate(lines) if line.startswith("submitted aws-"))
    assert summary < submitted, "shown before the job is submitted"
    assert result.stdout.strip().startswith("aws-")


def test_a_workdir_over_the_limit_is_refused_before_anything_is_uploaded(
    aws_env: Any, bucket: str, tmp_path: Path
) -> None:
    spec = write_job(tmp_path, bucket)
    (tmp_path / "proj" / "data.bin").write_bytes(b"x" * 4096)
    result = _run("run", str(spec), "--detach", env={"CLOUDBRIDGE_MAX_WORKDIR_MB": "0.001"})
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "over the 1.0 KiB limit" in errors[0] and "data.bin" in errors[0], result.stderr
    assert "submitted" not in result.stderr
    s3 = aws_env.client("s3")
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0, "nothing uploaded"


def test_status_wait_reads_the_job_until_it_ends_and_records_its_events(
    aws_env: Any, bucket: str, tmp_path: Path, monkeypatch: Any
) -> None:
    """A cloud job's state changes are seen (and its events fired) when it is read: `status --wait` keeps reading."""
    import json
    import time

    from moto.sagemaker.models import FakeTrainingJob
    from test_aws_lifecycle import set_state

    created = FakeTrainingJob.__init__

    def starts_provisioning(self: Any, *args: Any, **kwargs: Any) -> None:  # moto completes jobs at once
        created(self, *args, **kwargs)
        self.training_job_status, self.secondary_status = "InProgress", "Starting"

    monkeypatch.setattr(FakeTrainingJob, "__init__", starts_provisioning)
    submitted = _run("run", str(write_job(tmp_path, bucket)), "--detach")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    set_state(job_id.removeprefix("aws-"), "InProgress", "Training")
    waiting = subprocess.Popen([*CLI, "status", job_id, "--wait", "--json"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"})
    try:
        from cloudbridge.jobstore.store import JobStore

        # wait until the waiting CLI has read the job as RUNNING (its start-up takes seconds under load)
        deadline = time.monotonic() + 60
        while "RUNNING" not in [e["state"] for e in JobStore.default().events(job_id)]:
            assert waiting.poll() is None, "still waiting while the job trains"
            assert time.monotonic() < deadline, "status --wait never read the job as RUNNING"
            time.sleep(0.2)
        assert waiting.poll() is None, "still waiting while the job trains"
        set_state(job_id.removeprefix("aws-"), "Failed", "Failed", failure="AlgorithmError: exit code 3")
        out, err = waiting.communicate(timeout=60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert waiting.returncode == 1, err
    record = json.loads(out)
    assert (record["state"], record["reason"]) == ("FAILED", "non-zero exit (code 3)")
    assert [e["state"] for e in record["events"]] == ["STARTING", "RUNNING", "FAILED"], record["events"]
