"""SageMaker training jobs against the moto server.

What moto does and does not do (measured, see /work/shared/CLOUD-FAKES.md): ``CreateTrainingJob``
stores the request and reports the job ``Completed`` at once; it never fails a job, writes no logs
and does not implement ``StopTrainingJob`` (HTTP 500). So:

* a *failed* job is made by setting the job's status and ``failure_reason`` in moto's in-process
  backend (the ThreadedMotoServer shares this process); the reply still travels through moto's real
  ``DescribeTrainingJob`` serializer and our parser;
* logs are seeded into CloudWatch Logs through the real API;
* ``cancel`` is checked by capturing the exact request botocore sends (``before-send`` hook) to the
  real moto server, which then answers 500; the call surfaces as :class:`TransientError`.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from cloudbridge_aws.logs import LOG_GROUP
from cloudbridge_aws.states import failure_reason, map_state

from cloudbridge.errors import InvalidSpec, NotFound, TransientError
from cloudbridge.records import JobState
from cloudbridge.specs import JobSpec
from cloudbridge.testing.emulators import FAKE_ACCOUNT_ID

REGION = "us-east-1"


def backend_job(name: str) -> Any:
    """moto's in-process record of a training job (to put it in states moto never reaches)."""
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[FAKE_ACCOUNT_ID][REGION].training_jobs[name]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "train.py").write_text("print('training')\n")
    (root / "requirements.txt").write_text("scikit-learn\n")
    (root / ".gitignore").write_text("data/\n")
    (root / "data").mkdir()
    (root / "data" / "big.bin").write_bytes(b"x" * 100_000)
    return root


@pytest.fixture
def job_spec(workdir: Path, bucket: str) -> JobSpec:
    return JobSpec(
        name="unit_job",
        provider="aws",
        workdir=str(workdir),
        run="python train.py",
        resources={"accelerators": "T4:1", "max_runtime": "1h"},
        inputs={"train": f"s3://{bucket}/data/train"},
    )


class S3PutCounter:
    """Counts the bytes of every S3 upload request botocore sends (PutObject, UploadPart)."""

    def __init__(self, client: Any) -> None:
        self.requests: list[tuple[str, int]] = []
        client.meta.events.register("before-send.s3", self)

    def __call__(self, request: Any, **_: Any) -> None:
        if request.method == "PUT":
            body = request.body
            size = len(body) if isinstance(body, (bytes, bytearray)) else int(request.headers.get("Content-Length", 0))
            self.requests.append((request.url, size))

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self.requests)


def test_submit_describes_the_job(provider: Any, job_spec: JobSpec, bucket: str) -> None:
    job = provider.compute.submit(job_spec)
    assert job.id == f"aws-{job.native_id}" and job.native_id.startswith("unit-job-")
    assert job.provider == "aws" and job.name == "unit_job", "the spec's own name, from the job's tag"
    assert job.state is JobState.SUCCEEDED, "moto completes jobs at once"
    assert job.outputs_uri == f"s3://{bucket}/cloudbridge/outputs/{job.native_id}/output/"
    assert job.extra["model_artifacts"] == job.outputs_uri + "model.tar.gz"
    assert job.extra["instance_type"] == "ml.g4dn.xlarge"
    # What SageMaker stored is what the builder produced (moto echoes the request back).
    desc = provider.compute.describe(job.id)
    assert desc["ResourceConfig"]["InstanceType"] == "ml.g4dn.xlarge"
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in desc["InputDataConfig"]}
    assert channels["cbcode"] == job.extra["code_uri"]
    submit_dir = json.loads(desc["HyperParameters"]["sagemaker_submit_directory"])
    assert provider.storage.exists(submit_dir), "the launcher package was uploaded"
    # The code package holds the workdir minus what .gitignore excludes.
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(provider.storage.read_bytes(job.extra["code_uri"]))) as tar:
        assert sorted(tar.getnames()) == [".gitignore", "requirements.txt", "train.py"]
    # get / list agree.
    assert provider.compute.get(job.id).state is JobState.SUCCEEDED
    assert job.id in [j.id for j in provider.compute.list()]


def test_unchanged_workdir_uploads_zero_bytes(provider: Any, job_spec: JobSpec, bucket: str, workdir: Path) -> None:
    counter = S3PutCounter(provider.session.client("s3"))
    first = provider.compute.submit(job_spec)
    first_bytes = counter.bytes
    assert first_bytes > 0 and first.extra["uploaded_bytes"] > 0
    listed = {i.key: i.etag for i in provider.storage.list(f"s3://{bucket}/cloudbridge/code")}
    assert len(listed) == 1

    second = provider.compute.submit(job_spec)
    assert second.id != first.id
    assert counter.bytes == first_bytes, f"second submit uploaded: {counter.requests[-3:]}"
    assert second.extra["uploaded_bytes"] == 0
    assert {i.key: i.etag for i in provider.storage.list(f"s3://{bucket}/cloudbridge/code")} == listed

    (workdir / "train.py").write_text("print('changed')\n")
    third = provider.compute.submit(job_spec)
    assert third.extra["uploaded_bytes"] > 0
    assert len(list(provider.storage.list(f"s3://{bucket}/cloudbridge/code"))) == 2


def test_failure_reason_from_sagemaker(provider: Any, job_spec: JobSpec) -> None:
    job = provider.compute.submit(job_spec)
    record = backend_job(job.native_id)
    record.training_job_status = "Failed"
    record.secondary_status = "Failed"
    record.failure_reason = (
        'AlgorithmError: ExecuteUserScriptError: Command "/opt/conda/bin/python3.11 cloudbridge_entry.py" '
        "exit code 137, RuntimeError: CUDA error: out of memory"
    )
    failed = provider.compute.get(job.id)
    assert failed.state is JobState.FAILED
    assert failed.reason == "out of memory"
    assert failed.detail == record.failure_reason

    record.failure_reason = "ClientError: Insufficient capacity error from EC2 while launching instances"
    assert provider.compute.get(job.id).reason == "no capacity"


def test_failed_job_detail_ends_with_its_last_log_lines(provider: Any, job_spec: JobSpec, aws_env: Any) -> None:
    job = provider.compute.submit(job_spec)
    seed_logs(aws_env, job.native_id, {"algo-1": [f"line {i}" for i in range(30)] + ["Traceback: boom"]})
    record = backend_job(job.native_id)
    record.training_job_status, record.secondary_status = "Failed", "Failed"
    record.failure_reason = "AlgorithmError: ExecuteUserScriptError: exit code 1"
    failed = provider.compute.get(job.id)
    assert failed.reason == "non-zero exit (code 1)"
    head, _, tail = failed.detail.partition("\n")
    assert head == record.failure_reason
    assert tail.splitlines() == ["last 20 job log lines:", *[f"line {i}" for i in range(11, 30)], "Traceback: boom"]


def test_state_progression_and_timeouts(provider: Any, job_spec: JobSpec) -> None:
    job = provider.compute.submit(job_spec)
    record = backend_job(job.native_id)
    record.training_job_status = "InProgress"
    for secondary, state in [
        ("Starting", JobState.STARTING),
        ("Downloading", JobState.STARTING),
        ("Training", JobState.RUNNING),
        ("Interrupted", JobState.PENDING),
        ("Restarting", JobState.STARTING),
        ("Uploading", JobState.RUNNING),
    ]:
        record.secondary_status = secondary
        assert provider.compute.get(job.id).state is state, secondary
    record.training_job_status, record.secondary_status = "Stopped", "MaxRuntimeExceeded"
    timed_out = provider.compute.get(job.id)
    assert timed_out.state is JobState.FAILED and timed_out.reason == "timed out: running stage exceeded max_runtime 1h"
    record.training_job_status, record.secondary_status = "Stopped", "Stopped"
    assert provider.compute.get(job.id).state is JobState.CANCELLED


def test_cancel_sends_stop_training_job(provider: Any, job_spec: JobSpec) -> None:
    job = provider.compute.submit(job_spec)
    assert provider.compute.cancel(job.id).state is JobState.SUCCEEDED, "cancelling an ended job is a no-op"

    backend_job(job.native_id).training_job_status = "InProgress"
    backend_job(job.native_id).secondary_status = "Training"
    sent: list[tuple[str, dict[str, str], bytes]] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append((request.url, dict(request.headers), request.body))

    provider.session.client("sagemaker").meta.events.register("before-send.sagemaker.StopTrainingJob", capture)
    with pytest.raises(TransientError) as info:  # moto: HTTP 500 NotImplementedError
        provider.compute.cancel(job.id)
    assert isinstance(info.value.__cause__, Exception) and "StopTrainingJob" in str(info.value.__cause__)
    assert len(sent) == provider.settings.max_attempts, "the 500 was retried by botocore"
    url, headers, body = sent[0]
    assert url.startswith(provider.settings.endpoint_url)
    target = headers["X-Amz-Target"]
    assert (target.decode() if isinstance(target, bytes) else target) == "SageMaker.StopTrainingJob"
    assert json.loads(body) == {"TrainingJobName": job.native_id}


def seed_logs(moto: Any, job_name: str, streams: dict[str, list[str]]) -> None:
    logs = moto.client("logs")
    try:
        logs.create_log_group(logGroupName=LOG_GROUP)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    for host, lines in streams.items():
        stream = f"{job_name}/{host}-1700000000"
        try:
            logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        now = int(time.time() * 1000)
        logs.put_log_events(
            logGroupName=LOG_GROUP,
            logStreamName=stream,
            logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
        )


def test_logs_single_and_multi_node(provider: Any, job_spec: JobSpec, aws_env: Any) -> None:
    job = provider.compute.submit(job_spec)
    assert list(provider.compute.logs(job.id)) == [], "no log group yet: no lines, no error"
    seed_logs(aws_env, job.native_id, {"algo-1": ["epoch 1 loss 0.9", "epoch 2 loss 0.5\n"]})
    assert list(provider.compute.logs(job.id)) == ["epoch 1 loss 0.9", "epoch 2 loss 0.5"]

    other = provider.compute.submit(
        job_spec.model_copy(update={"resources": job_spec.resources.model_copy(update={"nodes": 2})})
    )
    seed_logs(aws_env, other.native_id, {"algo-1": ["rank 0 ready"], "algo-2": ["rank 1 ready"]})
    assert list(provider.compute.logs(other.id)) == ["[algo-1] rank 0 ready", "[algo-2] rank 1 ready"]
    assert list(provider.compute.logs(job.id)) == ["epoch 1 loss 0.9", "epoch 2 loss 0.5"], "prefixes do not mix"


def test_logs_follow_until_the_job_ends(provider: Any, job_spec: JobSpec, aws_env: Any) -> None:
    job = provider.compute.submit(job_spec)
    record = backend_job(job.native_id)
    record.training_job_status, record.secondary_status = "InProgress", "Training"
    seed_logs(aws_env, job.native_id, {"algo-1": ["step 1"]})
    provider.compute.poll_interval = 0.05

    def finish() -> None:
        time.sleep(0.3)
        seed_logs(aws_env, job.native_id, {"algo-1": ["step 2", "done"]})
        time.sleep(0.2)
        record.training_job_status, record.secondary_status = "Completed", "Completed"

    thread = threading.Thread(target=finish)
    thread.start()
    lines = list(provider.compute.logs(job.id, follow=True))
    thread.join()
    assert lines == ["step 1", "step 2", "done"]


def test_unknown_jobs_are_not_found(provider: Any) -> None:
    with pytest.raises(NotFound, match="no SageMaker training job 'nope-20250101-000000-abcd' in us-east-1"):
        provider.compute.get("aws-nope-20250101-000000-abcd")
    with pytest.raises(NotFound, match="no AWS job with id 'local-1234'"):
        provider.compute.get("local-1234")


def test_bad_spec_uploads_nothing(provider: Any, job_spec: JobSpec, bucket: str) -> None:
    bad = job_spec.model_copy(update={"inputs": {"train": "./data"}})
    with pytest.raises(InvalidSpec, match="inputs.train"):
        provider.compute.submit(bad)
    assert list(provider.storage.list(f"s3://{bucket}/cloudbridge")) == []


def test_state_table() -> None:
    assert map_state("Completed", "Completed") is JobState.SUCCEEDED
    assert map_state("Failed", "Failed") is JobState.FAILED
    assert map_state("Stopping", "Stopping") is JobState.RUNNING
    assert map_state("Stopped", "MaxWaitTimeExceeded") is JobState.FAILED
    assert map_state("InProgress", "LaunchingMLInstances") is JobState.STARTING
    assert (
        failure_reason(
            "ResourceLimitExceeded: The account-level service limit 'ml.p4d.24xlarge for training "
            "job usage' is 0 Instances"
        )
        == "quota exceeded"
    )
    assert failure_reason("ClientError: Failed to pull image: CannotPullContainerError") == "image pull failed"
    assert failure_reason("AlgorithmError: exited with non-zero exit code 1") == "non-zero exit (code 1)"
    assert failure_reason(None) is None
