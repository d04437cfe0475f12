"""SageMaker training jobs against the moto server: the shared ComputeConformance suite.

moto stores each ``CreateTrainingJob`` request and reports the job ``Completed`` at once: it runs no
container (so no command runs and no exit code decides the state), writes no CloudWatch logs and does
not implement ``StopTrainingJob``. The capability flags below say so; test_aws_compute.py covers logs
(seeded into CloudWatch Logs), failures (FailureReason) and the StopTrainingJob request. The data
plane is proven by ``cloudbridge emulate --as sagemaker``, which runs the job under SageMaker's layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cloudbridge.specs import JobSpec
from cloudbridge.testing.compute import ComputeConformance


class TestSageMakerComputeConformance(ComputeConformance):
    """Every generic compute rule that a control-plane emulator can check, on SageMaker (moto)."""

    provider_name = "aws"
    runs_commands = False
    supports_logs = False
    supports_follow = False
    supports_cancel = False
    wait_timeout = 30.0

    @pytest.fixture
    def compute(self, provider: Any) -> Any:
        provider.compute.poll_interval = 0.05
        return provider.compute

    @pytest.fixture
    def make_spec(self, tmp_path: Path, bucket: str) -> Any:
        workdir = tmp_path / "workdir"
        workdir.mkdir()
        (workdir / "train.py").write_text("print('hello')\n")

        def make(run: str, name: str = "conformance", **fields: Any) -> JobSpec:
            fields.setdefault("outputs", {"model": f"s3://{bucket}/out"})
            return JobSpec(name=name, run=run, provider="aws", workdir=str(workdir), **fields)

        return make
