"""Predictable job lifecycle on AWS: budgets, stage timeouts, failure reasons, spot restarts.

Against the moto server (see ``test_aws_compute.py`` for what moto does not do). Beyond that module:

* moto 5.2.5 does not implement ``StopTrainingJob`` (HTTP 500). :func:`moto_stops_jobs` adds it to
  the running server with SageMaker's documented effect (status ``Stopped``); the request still
  travels botocore -> HTTP -> moto's router, and the test checks it arrived.
* moto completes a training job the moment it is created; tests move jobs to other states through
  moto's in-process backend, as the existing tests do for ``FailureReason``.
* SageMaker's quota refusal and a hung SageMaker endpoint are real HTTP servers on 127.0.0.1 that
  SageMaker calls alone are sent to (``AWS_ENDPOINT_URL_SAGEMAKER``); S3 stays on moto.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cloudbridge_aws.limits import LIMITS_TAG, Limits
from cloudbridge_aws.provider import AwsProvider
from cloudbridge_aws.settings import AwsSettings
from cloudbridge_aws.training_request import to_training_job_request

import cloudbridge as cb
from cloudbridge.errors import BudgetExceeded, QuotaExceeded, StageTimeout
from cloudbridge.planner.catalog import load_catalog
from cloudbridge.planner.cost import estimate_resources
from cloudbridge.records import JobState
from cloudbridge.specs import JobSpec
from cloudbridge.testing.emulators import FAKE_ACCOUNT_ID

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/cloudbridge-sagemaker"
GOLDEN = Path(__file__).parent / "golden"


def backend_job(name: str) -> Any:
    """moto's in-process record of a training job."""
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[FAKE_ACCOUNT_ID][REGION].training_jobs[name]


def set_state(name: str, status: str, secondary: str, *, transitions: list[str] | None = None,
              failure: str | None = None, billable: int | None = None) -> Any:
    """Put a moto job in a SageMaker state moto never reaches by itself."""
    record = backend_job(name)
    record.training_job_status, record.secondary_status = status, secondary
    record.failure_reason = failure
    if transitions is not None:
        now = record.creation_time
        record.secondary_status_transitions = [{"Status": s, "StartTime": now, "StatusMessage": s} for s in transitions]
    if billable is not None:
        record.billable_time_in_seconds = billable
        record.training_time_in_seconds = billable
    return record


@pytest.fixture
def moto_stops_jobs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Give the moto server ``StopTrainingJob``; returns the names it was asked to stop."""
    from moto.core.responses import EmptyResult
    from moto.sagemaker.responses import SageMakerResponse

    stopped: list[str] = []

    def stop_training_job(self: Any) -> Any:
        name = self._get_param("TrainingJobName")
        job = self.sagemaker_backend.training_jobs[name]
        job.training_job_status, job.secondary_status = "Stopped", "Stopped"
        stopped.append(name)
        return EmptyResult()

    monkeypatch.setattr(SageMakerResponse, "stop_training_job", stop_training_job, raising=False)
    return stopped


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "train.py").write_text("print('training')\n")
    return root


def make_spec(workdir: Path, bucket: str, **resources: Any) -> JobSpec:
    """A T4 job; ``max_runtime`` 4h unless given (``None``: SageMaker's default, 1 day)."""
    resources = {"accelerators": "T4:1", "max_runtime": "4h", **resources}
    return JobSpec(name="life_job", provider="aws", workdir=str(workdir), run="python train.py",
                   resources={k: v for k, v in resources.items() if v is not None})


def hourly_of(spec: JobSpec, instance_type: str) -> float:
    est = estimate_resources(spec.resources, "aws", catalog=load_catalog(), region=REGION, instance_type=instance_type)
    assert est.hourly
    return est.hourly


# ---- budgets -----------------------------------------------------------------------------------
# With max_runtime, a budget below max_runtime x price is refused before submit (check_budget), so
# the cap binds when max_runtime is left to SageMaker's default (1 day).
BUDGET_CASES = {
    "budget_on_demand": {"max_cost": 1.0},
    "budget_spot": {"max_cost": 0.5, "spot": True},
    "budget_not_binding": {"max_cost": 100.0, "max_runtime": "4h"},
}


@pytest.mark.parametrize("case", sorted(BUDGET_CASES))
def test_budget_caps_max_runtime_golden(case: str, tmp_path: Path) -> None:
    """``max_cost`` / hourly estimate caps ``MaxRuntimeInSeconds``; the cap is recorded in a tag."""
    import os

    from test_aws_training_request import assert_valid

    catalog = load_catalog(include_plugins=False, include_env=False)
    spec = JobSpec(name="sst2-minilm", provider="aws", run="python train.py",
                   resources={"accelerators": "T4:1", **BUDGET_CASES[case]})
    settings = AwsSettings(region=REGION, bucket="cb-bucket", role_arn=ROLE)
    request = to_training_job_request(spec, settings, code_uri="s3://cb-bucket/code/x.tar.gz",
                                      job_name="sst2-minilm-20250101-120000-ab12", catalog=catalog)
    path = GOLDEN / f"training_{case}.json"
    rendered = json.dumps(request, indent=2, sort_keys=True) + "\n"
    if os.environ.get("CLOUDBRIDGE_UPDATE_GOLDEN") == "1":
        path.write_text(rendered, encoding="utf-8")
    assert rendered == path.read_text(encoding="utf-8"), f"{path.name} differs (CLOUDBRIDGE_UPDATE_GOLDEN=1)"
    assert_valid("sagemaker", "CreateTrainingJob", request)

    price = estimate_resources(spec.resources, "aws", catalog=catalog, region=REGION,
                               instance_type=request["ResourceConfig"]["InstanceType"]).hourly
    cap = int(spec.resources.max_cost / price * 3600)
    stopping = request["StoppingCondition"]
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}
    limits = Limits.from_tag(tags[LIMITS_TAG])
    runtime = spec.resources.max_runtime_seconds or 24 * 3600
    assert limits.budget_cap == cap and limits.max_runtime == runtime
    if cap < runtime:
        assert stopping["MaxRuntimeInSeconds"] == cap and limits.binding == "budget"
    else:
        assert stopping["MaxRuntimeInSeconds"] == runtime and limits.binding == "max_runtime"
    if spec.resources.spot:
        run = stopping["MaxRuntimeInSeconds"]
        assert stopping["MaxWaitTimeInSeconds"] == max(2 * run, run + 3600) >= run


def test_budget_too_small_to_start_is_refused() -> None:
    spec = JobSpec(name="big", provider="aws", run="python t.py",
                   resources={"accelerators": "A100:8", "max_cost": 0.01})
    settings = AwsSettings(region=REGION, bucket="cb-bucket", role_arn=ROLE)
    with pytest.raises(BudgetExceeded, match=r"max_cost \$0.01 buys only 0s at an estimated \$"):
        to_training_job_request(spec, settings, code_uri="s3://b/c.tar.gz", job_name="big-20250101-120000-ab12")


def test_budget_stop_is_budget_exceeded_and_max_runtime_stop_is_a_timeout(
    provider: Any, workdir: Path, bucket: str
) -> None:
    spec = make_spec(workdir, bucket, max_cost=1.0, max_runtime=None)
    tight = provider.compute.submit(spec)
    desc = provider.compute.describe(tight.id)
    cap = int(1.0 / hourly_of(spec, desc["ResourceConfig"]["InstanceType"]) * 3600)
    assert desc["StoppingCondition"]["MaxRuntimeInSeconds"] == cap < 24 * 3600, "SageMaker enforces the budget"
    assert tight.extra["budget_cap_seconds"] == cap
    set_state(tight.native_id, "Stopped", "MaxRuntimeExceeded", transitions=["Starting", "Training"])
    stopped = provider.compute.get(tight.id)
    assert stopped.state is JobState.FAILED and stopped.reason == "budget exceeded"
    assert f"MaxRuntimeInSeconds={cap}" in stopped.detail and "max_cost $1.00" in stopped.detail

    loose = provider.compute.submit(make_spec(workdir, bucket, max_cost=50.0))
    assert provider.compute.describe(loose.id)["StoppingCondition"]["MaxRuntimeInSeconds"] == 4 * 3600
    set_state(loose.native_id, "Stopped", "MaxRuntimeExceeded", transitions=["Starting", "Training"])
    timed_out = provider.compute.get(loose.id)
    assert timed_out.reason == "timed out: running stage exceeded max_runtime 4h"
    assert "MaxRuntimeInSeconds=14400" in timed_out.detail


# ---- timeouts ----------------------------------------------------------------------------------
def test_start_timeout_stops_a_job_still_provisioning(
    provider: Any, settings_values: dict[str, Any], workdir: Path, bucket: str, moto_stops_jobs: list[str]
) -> None:
    job = provider.compute.submit(make_spec(workdir, bucket, start_timeout="15m"))
    record = set_state(job.native_id, "InProgress", "Starting", transitions=["Starting"])
    record.creation_time = record.creation_time - dt.timedelta(minutes=1)
    assert provider.compute.get(job.id).state is JobState.STARTING, "within start_timeout: left alone"
    assert moto_stops_jobs == []

    record.secondary_status = "Downloading"
    record.creation_time = record.creation_time - dt.timedelta(minutes=15)
    failed = provider.compute.get(job.id)
    assert moto_stops_jobs == [job.native_id], "StopTrainingJob reached the server"
    assert failed.state is JobState.FAILED
    assert failed.reason == "timed out: provisioning exceeded start_timeout 15m"
    assert job.native_id in failed.detail and "had not started training 15m" in failed.detail
    # Another process (a fresh provider, no memory) reads the same outcome from the job's tags.
    fresh = AwsProvider(AwsSettings(**settings_values)).compute.get(job.id)
    assert (fresh.state, fresh.reason) == (JobState.FAILED, failed.reason)


def test_start_timeout_spares_a_job_that_already_trained(
    provider: Any, workdir: Path, bucket: str, moto_stops_jobs: list[str]
) -> None:
    job = provider.compute.submit(make_spec(workdir, bucket, start_timeout="15m", spot=True))
    record = set_state(job.native_id, "InProgress", "Interrupted", transitions=["Starting", "Training", "Interrupted"])
    record.creation_time = record.creation_time - dt.timedelta(hours=2)
    assert provider.compute.get(job.id).state is JobState.PENDING
    assert moto_stops_jobs == []


class SageMakerFake:
    """A real HTTP server standing in for SageMaker: answers every call with one AWS error, or hangs."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.targets: list[str] = []
        if mode == "hang":  # listens, never accepts: connects succeed, replies never come
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.sock.listen(64)
            self.port = self.sock.getsockname()[1]
            return
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.targets.append(self.headers.get("X-Amz-Target", ""))
                body = json.dumps({"__type": "ResourceLimitExceeded", "message": (
                    "The account-level service limit 'ml.g4dn.xlarge for training job usage' is 0 Instances, "
                    "with current utilization of 0 Instances and a request delta of 1 Instances.")}).encode()
                self.send_response(400)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        if self.mode == "hang":
            self.sock.close()
        else:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def sagemaker_fake(aws_env: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Any]:
    fake = SageMakerFake(request.param)
    # Per-service endpoints (botocore honours AWS_ENDPOINT_URL_<SERVICE>): S3 on moto, SageMaker here.
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws_env.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", f"http://127.0.0.1:{fake.port}")
    yield fake
    fake.close()


@pytest.mark.parametrize("sagemaker_fake", ["hang"], indirect=True)
def test_submit_timeout_is_a_stage_timeout(sagemaker_fake: Any, bucket: str, workdir: Path) -> None:
    settings = AwsSettings(region=REGION, bucket=bucket, role_arn=ROLE, max_attempts=2, read_timeout=0.5,
                           connect_timeout=0.5)
    compute = AwsProvider(settings).compute
    started = time.monotonic()
    with pytest.raises(StageTimeout) as info:
        compute.submit(make_spec(workdir, bucket))
    assert info.value.stage == "submit"
    text = str(info.value)
    assert text.startswith("submit timed out: SageMaker did not answer CreateTrainingJob for life-job-")
    assert "read_timeout 0.5s (2 attempts)" in text and "\n" not in text
    assert type(info.value.__cause__).__name__ == "ReadTimeoutError"
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("sagemaker_fake", ["quota"], indirect=True)
def test_quota_at_submit_is_quota_exceeded_and_records_nothing(sagemaker_fake: Any, bucket: str,
                                                               tmp_path: Path) -> None:
    spec = write_spec(tmp_path, bucket)
    with pytest.raises(QuotaExceeded) as info:
        cb.run(spec)
    assert "ResourceLimitExceeded" in str(info.value) and "Service Quotas" in str(info.value)
    assert sagemaker_fake.targets == ["SageMaker.CreateTrainingJob"]
    assert cb.jobs(provider="aws") == []


def test_log_follow_timeout_names_the_stage(provider: Any, workdir: Path, bucket: str, aws_env: Any) -> None:
    from test_aws_compute import seed_logs

    job = provider.compute.submit(make_spec(workdir, bucket))
    set_state(job.native_id, "InProgress", "Training", transitions=["Starting", "Training"])
    seed_logs(aws_env, job.native_id, {"algo-1": ["epoch 1", "epoch 2"]})
    provider.compute.poll_interval = 0.1
    lines: list[str] = []
    started = time.monotonic()
    with pytest.raises(StageTimeout) as info:
        for line in provider.compute.logs(job.id, follow=True, timeout=0.6):
            lines.append(line)
    assert lines == ["epoch 1", "epoch 2"]
    assert info.value.stage == "log follow"
    assert str(info.value).startswith(f"log follow timed out after 0.6s: job {job.id} is still RUNNING")
    assert 0.5 < time.monotonic() - started < 10


# ---- failure reasons ---------------------------------------------------------------------------
FAILURES = [
    ("Failed", "Failed", "AlgorithmError: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB",
     "out of memory"),
    ("Failed", "Failed", "AlgorithmError: ExecuteUserScriptError: exit code 137", "out of memory"),
    ("Failed", "Failed", "ClientError: CannotStartContainerError. Please ensure the model container is valid",
     "image pull failed"),
    ("Failed", "Failed", "ResourceLimitExceeded: The account-level service limit 'ml.p4d.24xlarge for spot "
     "training job usage' is 0 Instances", "quota exceeded"),
    ("Failed", "Failed", "InsufficientCapacityError: not enough capacity for ml.p4d.24xlarge", "no capacity"),
    ("Failed", "Failed", 'AlgorithmError: ExecuteUserScriptError: Command "python train.py" exit code 1',
     "non-zero exit (code 1)"),
    ("Stopped", "MaxRuntimeExceeded", None, "timed out: running stage exceeded max_runtime 4h"),
    ("Stopped", "MaxWaitTimeExceeded", None, "spot reclaimed"),
]


@pytest.mark.parametrize(("status", "secondary", "message", "reason"), FAILURES)
def test_every_failed_path_has_a_reason_and_the_providers_detail(
    provider: Any, workdir: Path, bucket: str, aws_env: Any, status: str, secondary: str, message: str | None,
    reason: str
) -> None:
    from test_aws_compute import seed_logs

    job = provider.compute.submit(make_spec(workdir, bucket, spot=secondary == "MaxWaitTimeExceeded"))
    seed_logs(aws_env, job.native_id, {"algo-1": [f"step {i}" for i in range(25)]})
    transitions = ["Starting", "Training", "Interrupted", "Starting", "Training"] if "Wait" in secondary else None
    set_state(job.native_id, status, secondary, failure=message, transitions=transitions)
    failed = provider.compute.get(job.id)
    assert failed.state is JobState.FAILED
    assert failed.reason == reason
    assert failed.detail and failed.detail.strip()
    if message:
        assert failed.detail.startswith(message), "the provider's own message comes first"
    assert failed.detail.endswith("\n".join(f"step {i}" for i in range(5, 25))), "with the last 20 log lines"
    assert failed.attempts[-1]["reason"] == reason


def write_spec(tmp_path: Path, bucket: str, resources: str = "{accelerators: 'T4:1', max_runtime: 2h}",
               extra: str = "") -> Path:
    (tmp_path / "proj").mkdir(exist_ok=True)
    (tmp_path / "proj" / "train.py").write_text("print('hi')\n")
    spec = tmp_path / "job.yaml"
    spec.write_text(
        f"name: spot_job\nprovider: aws\nworkdir: proj\nrun: python train.py\nresources: {resources}\n{extra}"
        f"overrides:\n  aws: {{bucket: {bucket}, role_arn: '{ROLE}'}}\n"
    )
    return spec
