"""Azure ML command jobs on the fake, which really runs them: the shared compute conformance suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cloudbridge.specs import JobSpec
from cloudbridge.testing.compute import ComputeConformance


class TestAzureMLComputeConformance(ComputeConformance):
    """Every generic compute rule on Azure ML (the fake runs each job's processes for real)."""

    provider_name = "azure"
    wait_timeout = 90.0

    @pytest.fixture
    def compute(self, fake_provider: Any) -> Any:
        compute = fake_provider.compute
        compute.poll_interval = 0.2
        return compute

    @pytest.fixture
    def make_spec(self, tmp_path: Path) -> Any:
        def make(run: str, name: str = "conformance", **fields: Any) -> JobSpec:
            fields.setdefault("distribution", "none")
            return JobSpec(name=name, run=run, provider="azure", workdir=str(tmp_path), **fields)

        return make
