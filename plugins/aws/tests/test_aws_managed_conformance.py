"""``ManagedComputeConformance`` against the SageMaker adapter on the moto server.

moto completes a training job the moment it is created and never moves it again, so every job here
starts ``InProgress``/``Pending`` (moto's ``FakeTrainingJob`` is patched at creation) and
:class:`MotoDriver` moves it through moto's in-process backend, as ``test_aws_lifecycle.py`` does;
``StopTrainingJob`` comes from that module's ``moto_stops_jobs`` fixture (moto 5.2.5 lacks it).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cloudbridge_aws.provider import AwsProvider
from cloudbridge_aws.settings import AwsSettings
from test_aws_lifecycle import backend_job, moto_stops_jobs, set_state  # noqa: F401 - moto_stops_jobs: a fixture

from cloudbridge.errors import StageTimeout
from cloudbridge.managed import ManagedCompute
from cloudbridge.specs import JobSpec
from cloudbridge.testing.managed import ManagedComputeConformance, ManagedDriver


class MotoDriver(ManagedDriver):
    """SageMaker states on moto's in-process backend."""

    failure_messages = {
        "AlgorithmError: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB": "out of memory",
        "ClientError: CannotStartContainerError. Please ensure the model container is valid": "image pull failed",
        "ResourceLimitExceeded: The account-level service limit 'ml.p4d.24xlarge for spot training job usage' "
        "is 0 Instances": "quota exceeded",
        "InsufficientCapacityError: not enough capacity for ml.p4d.24xlarge": "no capacity",
        'AlgorithmError: ExecuteUserScriptError: Command "python train.py" exit code 1': "non-zero exit (code 1)",
    }

    def __init__(self, stopped: list[str]) -> None:
        self.stopped = stopped

    def provisioning(self, native_id: str) -> None:
        set_state(native_id, "InProgress", "Starting", transitions=["Starting"])

    def running(self, native_id: str) -> None:
        set_state(native_id, "InProgress", "Training", transitions=["Starting", "Training"])

    def failed(self, native_id: str, message: str) -> None:
        set_state(native_id, "Failed", "Failed", transitions=["Starting", "Training", "Failed"], failure=message)

    def hit_runtime_cap(self, native_id: str, used: int) -> None:
        set_state(native_id, "Stopped", "MaxRuntimeExceeded", transitions=["Starting", "Training"], billable=used)

    def spot_gave_up(self, native_id: str, interruptions: int, used: int) -> None:
        set_state(native_id, "Stopped", "MaxWaitTimeExceeded",
                  transitions=["Starting", "Training"] + ["Interrupted"] * interruptions, billable=used)

    def age(self, native_id: str, seconds: float) -> None:
        backend_job(native_id).creation_time -= dt.timedelta(seconds=seconds)

    def runtime_cap(self, native_id: str) -> int:
        return int(backend_job(native_id).stopping_condition["MaxRuntimeInSeconds"])

    def was_stopped(self, native_id: str) -> bool:
        return native_id in self.stopped


class TestSageMakerManagedCompute(ManagedComputeConformance):
    @pytest.fixture(autouse=True)
    def jobs_start_pending(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from moto.sagemaker.models import FakeTrainingJob

        created = FakeTrainingJob.__init__

        def pending(self: Any, *args: Any, **kwargs: Any) -> None:
            created(self, *args, **kwargs)
            self.training_job_status, self.secondary_status = "InProgress", "Pending"
            self.secondary_status_transitions = []

        monkeypatch.setattr(FakeTrainingJob, "__init__", pending)

    @pytest.fixture
    def other_process(self, settings_values: dict[str, Any]) -> Callable[[], ManagedCompute]:
        return lambda: AwsProvider(AwsSettings(**settings_values)).compute

    @pytest.fixture
    def managed_compute(self, other_process: Callable[[], ManagedCompute]) -> ManagedCompute:
        return other_process()

    @pytest.fixture
    def driver(self, moto_stops_jobs: list[str]) -> ManagedDriver:  # noqa: F811 - the imported fixture
        return MotoDriver(moto_stops_jobs)

    @pytest.fixture
    def checkpoints_uri(self, bucket: str) -> str:
        return f"s3://{bucket}/checkpoints/conformance"

    @pytest.fixture
    def os_process_reader(self, settings_values: dict[str, Any]) -> Callable[[str], list[str]]:
        """A fresh interpreter that reads the job from the moto server over HTTP (environment inherited)."""
        code = ("import json, sys; from cloudbridge_aws.provider import AwsProvider; "
                "from cloudbridge_aws.settings import AwsSettings; "
                "job = AwsProvider(AwsSettings(**json.loads(sys.argv[1]))).compute.get(sys.argv[2]); "
                "print(json.dumps(job.to_dict(), default=str))")
        return lambda job_id: [sys.executable, "-c", code, json.dumps(settings_values), job_id]

    @pytest.fixture
    def lost_reply_error(self) -> Exception:
        from botocore.exceptions import ReadTimeoutError

        error = StageTimeout("submit timed out: SageMaker did not answer CreateTrainingJob", stage="submit")
        error.__cause__ = ReadTimeoutError(endpoint_url="http://127.0.0.1")
        return error

    @pytest.fixture
    def make_spec(self, tmp_path: Path) -> Callable[..., JobSpec]:
        workdir = tmp_path / "project"
        workdir.mkdir(exist_ok=True)
        (workdir / "train.py").write_text("print('training')\n")

        def make(name: str = "conformance", **fields: Any) -> JobSpec:
            resources = {"accelerators": "T4:1", "max_runtime": "4h", **fields.pop("resources", {})}
            return JobSpec(name=name, provider="aws", run="python train.py", workdir=str(workdir),
                           resources=resources, **fields)

        return make
