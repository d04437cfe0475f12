"""The DeployConformance suite on the builtin local backend (real servers on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudbridge.backends.local.deploy import LocalDeploy
from cloudbridge.testing.deploy import DeployConformance, build_tiny_model


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny sequence-classification model, built once for the module."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


class TestLocalDeployConformance(DeployConformance):
    """LocalDeploy passes the shared endpoint contract."""

    @pytest.fixture
    def deploy(self) -> LocalDeploy:
        """A LocalDeploy over this test's CLOUDBRIDGE_HOME."""
        return LocalDeploy()

    @pytest.fixture
    def model_uri(self, tiny_model_dir: Path) -> str:
        """The tiny model's directory."""
        return str(tiny_model_dir)
