"""Spot interruption with checkpoints on AWS: automatic resubmits up to ``resources.max_restarts``.

moto completes a training job the moment it is created; :func:`moto_jobs_start` makes new jobs
start ``InProgress``/``Starting`` as SageMaker's do, and the tests move each attempt on through
moto's in-process backend (``Stopped``/``MaxWaitTimeExceeded`` after ``Interrupted``: SageMaker's
managed spot lifecycle when capacity does not come back in time).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_aws_lifecycle import backend_job, set_state, write_spec

import cloudbridge as cb
from cloudbridge.records import JobState


@pytest.fixture
def moto_jobs_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """New moto training jobs start ``InProgress``/``Starting`` instead of ``Completed``."""
    from moto.sagemaker.models import FakeTrainingJob

    original = FakeTrainingJob.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.training_job_status, self.secondary_status = "InProgress", "Starting"
        self.training_end_time = None

    monkeypatch.setattr(FakeTrainingJob, "__init__", init)


SPOT = "{accelerators: 'T4:1', spot: true, max_runtime: 2h, max_restarts: 2}"
INTERRUPTED = ["Starting", "Downloading", "Training", "Interrupted", "Starting", "Training", "Interrupted"]


def test_spot_interruption_resubmits_from_checkpoints_up_to_max_restarts(
    bucket: str, tmp_path: Path, moto_jobs_start: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from cloudbridge.cli.main import main

    ckpt = f"s3://{bucket}/ckpt/spot"
    job = cb.run(write_spec(tmp_path, bucket, SPOT, f"checkpoints: {ckpt}\n"))
    original = job.native_id
    assert job.state is JobState.STARTING and len(original) <= 63 - len("-r2")
    sent: list[dict[str, Any]] = []
    client = job._compute.sagemaker  # the provider's own client: capture what the restart sends
    client.meta.events.register("before-send.sagemaker.CreateTrainingJob",
                                lambda request, **_: sent.append(json.loads(request.body)))

    set_state(original, "InProgress", "Training", transitions=INTERRUPTED[:3])
    assert cb.get_job(job.id).state is JobState.RUNNING
    set_state(original, "Stopped", "MaxWaitTimeExceeded", transitions=INTERRUPTED, billable=600)
    restarted = cb.get_job(job.id)
    assert restarted.id == job.id and restarted.native_id == f"{original}-r1"
    assert restarted.state is JobState.STARTING
    assert [(a["attempt"], a["native_id"], a["state"], a["reason"]) for a in restarted.attempts] == [
        (1, original, "FAILED", "spot reclaimed"), (2, f"{original}-r1", "STARTING", None)]
    assert restarted.attempts[0]["interruptions"] == 2
    # The same request, resuming from the same checkpoints, with what is left of max_runtime.
    (request,) = sent
    assert request["CheckpointConfig"] == {"S3Uri": ckpt, "LocalPath": "/opt/ml/checkpoints"}
    assert request["StoppingCondition"]["MaxRuntimeInSeconds"] == 7200 - 600
    assert request["Environment"]["CB_JOB_ID"] == job.id and request["Environment"]["CB_RUN"] == "python train.py"
    assert json.loads(request["HyperParameters"]["sagemaker_job_name"]) == f"{original}-r1"
    first = job._compute.describe(job.id)
    assert request["InputDataConfig"] == first["InputDataConfig"]
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}
    assert tags["cloudbridge:job-id"] == job.id and tags["cloudbridge:attempt"] == "2"

    # A second interruption, seen by another process (fresh provider: the restart is rebuilt from
    # DescribeTrainingJob), then a third: max_restarts 2 is the limit.
    set_state(f"{original}-r1", "Stopped", "MaxWaitTimeExceeded", transitions=INTERRUPTED, billable=600)
    from cloudbridge.backends import clear_provider_cache

    clear_provider_cache()
    again = cb.get_job(job.id)
    assert again.native_id == f"{original}-r2" and len(again.attempts) == 3
    assert backend_job(f"{original}-r2").checkpoint_config == {"S3Uri": ckpt, "LocalPath": "/opt/ml/checkpoints"}
    assert backend_job(f"{original}-r2").stopping_condition["MaxRuntimeInSeconds"] == 7200 - 1200
    set_state(f"{original}-r2", "Stopped", "MaxWaitTimeExceeded", transitions=INTERRUPTED, billable=600)
    final = cb.get_job(job.id)
    assert final.state is JobState.FAILED and final.reason == "spot reclaimed"
    assert "no restart left (max_restarts 2 used)" in final.detail
    assert [a["native_id"] for a in final.attempts] == [original, f"{original}-r1", f"{original}-r2"]
    assert [e["extra"].get("attempt") for e in final.extra["events"] if e["extra"]] == [2, 3], "the SDK shows events"

    # cloudbridge status shows reason, detail, every attempt and the restart events.
    capsys.readouterr()
    assert main(["status", job.id]) == 0
    shown = capsys.readouterr().out
    assert "spot reclaimed" in shown and "no restart left" in shown
    assert f"{original}-r1" in shown and f"{original}-r2" in shown
    assert shown.count("restarted after spot reclaimed") == 2
    assert main(["status", job.id, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["attempts"]) == 3 and data["reason"] == "spot reclaimed"
    restarts = [e for e in data["events"] if e["extra"].get("event") == "restarted"]
    assert [e["extra"]["native_id"] for e in restarts] == [f"{original}-r1", f"{original}-r2"]


def test_spot_without_checkpoints_is_not_restarted(bucket: str, tmp_path: Path, moto_jobs_start: None) -> None:
    job = cb.run(write_spec(tmp_path, bucket, SPOT))
    set_state(job.native_id, "Stopped", "MaxWaitTimeExceeded", transitions=INTERRUPTED, billable=60)
    failed = cb.get_job(job.id)
    assert failed.state is JobState.FAILED and failed.reason == "spot reclaimed" and len(failed.attempts) == 1
    assert failed.detail.startswith("managed spot capacity was reclaimed 2 time(s)")


def test_restarts_stop_when_the_budget_is_spent(bucket: str, tmp_path: Path, moto_jobs_start: None) -> None:
    resources = "{accelerators: 'T4:1', spot: true, max_restarts: 3, max_cost: 0.2}"
    job = cb.run(write_spec(tmp_path, bucket, resources, f"checkpoints: s3://{bucket}/ckpt/b\n"))
    cap = job.extra["budget_cap_seconds"]
    assert job.extra["budget"]["estimate"].endswith("spot, estimate)") and cap < 24 * 3600
    assert any("max_runtime is not" in w for w in job.extra["budget"]["warnings"])
    set_state(job.native_id, "Stopped", "MaxWaitTimeExceeded", transitions=INTERRUPTED, billable=cap - 30)
    failed = cb.get_job(job.id)
    assert failed.state is JobState.FAILED and len(failed.attempts) == 1
    assert "not restarted: only 30s of the budget left" in failed.detail
