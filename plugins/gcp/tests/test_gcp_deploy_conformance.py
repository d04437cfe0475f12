"""Vertex AI endpoints on the Vertex AI fake, which serves predictions by running the real local
inference server from the uploaded model: the shared DeployConformance suite, with real predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cloudbridge.testing.deploy import DeployConformance, build_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tiny BERT classifier directory (built once per session)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


class TestVertexDeployConformance(DeployConformance):
    """Every generic endpoint rule: models.upload, endpoints.create, deployModel, predict, undeploy + deletes."""

    ready_states = ("DEPLOYED",)

    @pytest.fixture
    def deploy(self, vertex_provider: Any) -> Any:
        return vertex_provider.deploy

    @pytest.fixture
    def model_uri(self, tiny_model: Path) -> str:
        return str(tiny_model)
