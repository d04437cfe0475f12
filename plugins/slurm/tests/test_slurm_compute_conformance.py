"""The shared Compute conformance suite against a real 2-node Slurm cluster."""

from __future__ import annotations

import pytest
from cloudbridge_slurm.provider import SlurmProvider

from cloudbridge.interfaces import Compute
from cloudbridge.testing.compute import ComputeConformance


class TestSlurmCompute(ComputeConformance):
    provider_name = "slurm"
    wait_timeout = 90.0

    @pytest.fixture
    def compute(self, slurm_provider: SlurmProvider) -> Compute:
        return slurm_provider.compute

    @pytest.fixture
    def unknown_job_id(self) -> str:
        return "slurm-nosuchjob-20000101-000000-dead"
