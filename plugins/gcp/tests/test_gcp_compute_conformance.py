"""Vertex AI custom jobs on the Vertex AI fake, which runs every replica as a local process: the
shared ComputeConformance suite, with every capability on (commands run, logs, follow, cancel)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cloudbridge.specs import JobSpec
from cloudbridge.testing.compute import ComputeConformance


class TestVertexComputeConformance(ComputeConformance):
    """Every generic compute rule, on jobs the fake really runs (logs come through Cloud Logging's API)."""

    provider_name = "gcp"
    wait_timeout = 90.0

    @pytest.fixture
    def compute(self, vertex_provider: Any) -> Any:
        return vertex_provider.compute

    @pytest.fixture
    def unknown_job_id(self) -> str:
        return "gcp-no-such-job-20200101-000000-dead"

    @pytest.fixture
    def make_spec(self, tmp_path: Path, bucket: str) -> Any:
        workdir = tmp_path / "workdir"
        workdir.mkdir()
        (workdir / "train.py").write_text("print('hello')\n")

        def make(run: str, name: str = "conformance", **fields: Any) -> JobSpec:
            fields.setdefault("outputs", {"model": f"gs://{bucket}/out/{name}"})
            fields.setdefault("distribution", "none")
            return JobSpec(name=name, run=run, provider="gcp", workdir=str(workdir), **fields)

        return make
