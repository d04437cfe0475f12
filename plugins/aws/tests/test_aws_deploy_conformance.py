"""SageMaker endpoints against the moto server: the shared DeployConformance suite.

moto creates models, endpoint configs and endpoints (``InService`` at once) but runs no container,
so invocations answer with canned replies seeded through ``/moto-api/static/sagemaker/endpoint-results``
(``invoke_checks = "exact"``) and a malformed payload cannot be refused by a real handler
(``rejects_bad_payload = False``; the ModelError mapping is tested in test_aws_errors.py). The serving
container itself is the same ``python -m cloudbridge.serving.serve`` the local backend runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloudbridge.testing.deploy import DeployConformance, build_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tiny BERT classifier directory (built once per session)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


class TestSageMakerDeployConformance(DeployConformance):
    """Every generic endpoint rule on SageMaker (moto)."""

    invoke_checks = "exact"
    ready_states = ("InService",)
    rejects_bad_payload = False

    @pytest.fixture
    def deploy(self, provider: Any) -> Any:
        return provider.deploy

    @pytest.fixture
    def model_uri(self, tiny_model: Path) -> str:
        return str(tiny_model)

    @pytest.fixture
    def expected_reply(self, aws_env: Any) -> Any:
        reply = {
            "predictions": [
                {"label": "positive", "score": 0.9},
                {"label": "negative", "score": 0.8},
                {"label": "positive", "score": 0.7},
            ]
        }
        aws_env.set_sagemaker_results([{"Body": json.dumps(reply), "ContentType": "application/json"}])
        return reply
