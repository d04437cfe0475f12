"""``ManagedComputeConformance`` against the Vertex AI adapter on the Vertex AI fake.

Here the fake holds new jobs (``hold``: stored, not run) and :class:`FakeDriver` moves them between
states by editing the fake's stored CustomJob -- ``state``, ``error {code, message}``, start/end and
create times -- exactly the fields Vertex AI reports, so every read goes through the real SDK and REST.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cloudbridge_gcp.provider import GcpProvider
from cloudbridge_gcp.settings import GcpSettings

from cloudbridge.managed import ManagedCompute
from cloudbridge.specs import JobSpec
from cloudbridge.testing.managed import ManagedComputeConformance, ManagedDriver
from cloudbridge.testing.vertex_fake import rfc3339


def _epoch(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=__import__("datetime").timezone.utc
                                                                     ).timestamp()


class FakeDriver(ManagedDriver):
    """Vertex AI states on the fake's stored jobs."""

    failure_messages = {
        "The replica workerpool0-0 ran out of memory (OOM killed) and exited with a non-zero status of 137.":
            "out of memory",
        "Unable to pull the container image us-docker.pkg.dev/p/r/trainer:latest: not found": "image pull failed",
        "Quota exceeded for aiplatform.googleapis.com/custom_model_training_nvidia_t4_gpus in us-central1.":
            "quota exceeded",
        "The zone us-central1-a does not have enough resources available to fulfill the request.": "no capacity",
        "The replica workerpool0-0 exited with a non-zero status of 1. To find out more about why your job "
        "exited please check the logs.": "non-zero exit (code 1)",
    }

    def __init__(self, fake: Any) -> None:
        self.fake = fake

    def _job(self, native_id: str) -> dict[str, Any]:
        with self.fake.lock:
            for job in self.fake.jobs.values():
                if job["displayName"] == native_id:
                    return job
        raise KeyError(native_id)

    def _set(self, native_id: str, state: str, *, used: float | None = None, error: dict[str, Any] | None = None
             ) -> None:
        job, now = self._job(native_id), time.time()
        with self.fake.lock:
            job.update(state=state, updateTime=rfc3339(now))
            if used is not None:
                job.update(startTime=rfc3339(now - used), endTime=rfc3339(now))
            elif state == "JOB_STATE_RUNNING":
                job["startTime"] = rfc3339(now)
            if error:
                job["error"] = error
            if state == "JOB_STATE_FAILED" and "endTime" not in job:
                job["endTime"] = rfc3339(now)

    def provisioning(self, native_id: str) -> None:
        self._set(native_id, "JOB_STATE_PENDING")

    def running(self, native_id: str) -> None:
        self._set(native_id, "JOB_STATE_RUNNING")

    def failed(self, native_id: str, message: str) -> None:
        self._set(native_id, "JOB_STATE_FAILED", used=60, error={"code": 3, "message": message})

    def hit_runtime_cap(self, native_id: str, used: int) -> None:
        self._set(native_id, "JOB_STATE_FAILED", used=used, error={
            "code": 4, "message": f"Job exceeded the maximum running duration of {used}s (scheduling.timeout)."})

    def spot_gave_up(self, native_id: str, interruptions: int, used: int) -> None:
        message = ("The replica workerpool0-0 was preempted: its Spot VM was reclaimed by Compute Engine."
                   if interruptions else "Spot capacity was not available within max_wait_duration.")
        self._set(native_id, "JOB_STATE_FAILED", used=used, error={"code": 14, "message": message})

    def age(self, native_id: str, seconds: float) -> None:
        job = self._job(native_id)
        with self.fake.lock:
            job["createTime"] = rfc3339(_epoch(job["createTime"]) - seconds)

    def runtime_cap(self, native_id: str) -> int:
        return int(float(self._job(native_id)["jobSpec"]["scheduling"]["timeout"].rstrip("s")))

    def was_stopped(self, native_id: str) -> bool:
        return self._job(native_id)["state"] in ("JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED")


class TestVertexManagedCompute(ManagedComputeConformance):
    @pytest.fixture
    def other_process(self, vertex_values: dict[str, Any], vertex: Any) -> Callable[[], ManagedCompute]:
        vertex.hold = True
        return lambda: GcpProvider(GcpSettings(**vertex_values)).compute

    @pytest.fixture
    def managed_compute(self, other_process: Callable[[], ManagedCompute]) -> ManagedCompute:
        return other_process()

    @pytest.fixture
    def os_process_reader(self, vertex_values: dict[str, Any]) -> Callable[[str], list[str]]:
        code = ("import json, sys; from cloudbridge_gcp.provider import GcpProvider; "
                "from cloudbridge_gcp.settings import GcpSettings; "
                "compute = GcpProvider(GcpSettings(**json.loads(sys.argv[1]))).compute; "
                "print(json.dumps(compute.get(sys.argv[2]).to_dict()))")
        return lambda job_id: [sys.executable, "-c", code, json.dumps(vertex_values), job_id]

    @pytest.fixture
    def driver(self, vertex: Any) -> ManagedDriver:
        return FakeDriver(vertex)

    @pytest.fixture
    def checkpoints_uri(self, bucket: str) -> str:
        return f"gs://{bucket}/checkpoints/conformance"

    @pytest.fixture
    def make_spec(self, tmp_path: Path, bucket: str) -> Callable[..., JobSpec]:
        workdir = tmp_path / "project"
        workdir.mkdir(exist_ok=True)
        (workdir / "train.py").write_text("print('training')\n")

        def make(name: str = "conformance", **fields: Any) -> JobSpec:
            resources = {"accelerators": "T4:1", "max_runtime": "4h", **fields.pop("resources", {})}
            return JobSpec(name=name, provider="gcp", run="python train.py", workdir=str(workdir),
                           resources=resources, outputs={"model": f"gs://{bucket}/out/{name}"}, **fields)

        return make
