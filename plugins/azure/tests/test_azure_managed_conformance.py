"""The managed-jobs core's promises through the Azure ML adapter, on the fake (jobs held and moved by
:class:`~cloudbridge.testing.azureml.driver.AzureMLDriver` instead of running)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cloudbridge.specs import JobSpec
from cloudbridge.testing.azurite import ACCOUNT
from cloudbridge.testing.managed import ManagedComputeConformance


class TestAzureMLManagedConformance(ManagedComputeConformance):
    """Budget cap, start_timeout, spot restarts, reasons, events and orphans on Azure ML."""

    @pytest.fixture
    def held(self, fake_env: Any) -> Iterator[Any]:
        fake_env.hold_jobs = True
        try:
            yield fake_env
        finally:
            fake_env.hold_jobs = False

    @pytest.fixture
    def other_process(self, held: Any, fake_settings: dict[str, Any]) -> Callable[[], Any]:
        from cloudbridge_azure.provider import AzureProvider
        from cloudbridge_azure.settings import AzureSettings

        def fresh() -> Any:
            compute = AzureProvider(AzureSettings(**fake_settings)).compute
            compute.adapter.poll_interval = 0.05
            return compute

        return fresh

    @pytest.fixture
    def managed_compute(self, other_process: Callable[[], Any]) -> Any:
        return other_process()

    @pytest.fixture
    def driver(self, held: Any) -> Any:
        from cloudbridge.testing.azureml.driver import AzureMLDriver

        return AzureMLDriver(held)

    @pytest.fixture
    def make_spec(self, tmp_path: Path) -> Callable[..., JobSpec]:
        (tmp_path / "train.py").write_text("print('hi')\n")

        def make(name: str = "managed", **fields: Any) -> JobSpec:
            resources = {"cpus": 4, **fields.pop("resources", {})}
            return JobSpec(name=name, run="python train.py", provider="azure", workdir=str(tmp_path),
                           distribution="none", resources=resources, **fields)

        return make

    @pytest.fixture
    def checkpoints_uri(self, container: str) -> str:
        return f"az://{ACCOUNT}/{container}/ckpt-{uuid.uuid4().hex[:6]}"
