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


def test_a_half_failed_deploy_leaves_nothing_behind(vertex_provider: Any, vertex: Any, tiny_model: Path) -> None:
    """deployModel refused after models.upload and endpoints.create: the endpoint and the model are removed."""
    from cloudbridge.errors import AuthenticationError
    from cloudbridge.specs import EndpointSpec

    models, endpoints = len(vertex.models), len(vertex.endpoints)
    vertex.inject("permission", r"POST .*/endpoints/[0-9]+:deployModel$")
    with pytest.raises(AuthenticationError, match="roles/aiplatform.user"):
        vertex_provider.deploy.deploy(EndpointSpec(name="half-failed", provider="gcp", model=str(tiny_model)))
    assert (len(vertex.models), len(vertex.endpoints)) == (models, endpoints), "nothing is left behind"
    assert any(path.endswith(":deployModel") for _, path in vertex.requests), "the deploy was attempted"


def test_deploy_request_maps_replicas_and_autoscaling() -> None:
    """min/max replicas and CPU autoscaling in dedicatedResources; the container speaks /ping and /invocations."""
    from cloudbridge_gcp.deploy import deploy_requests
    from google.cloud import aiplatform_v1

    from cloudbridge.specs import EndpointSpec

    spec = EndpointSpec(name="sst2", provider="gcp", model="gs://b/m", min_replicas=2, max_replicas=5,
                        accelerators="T4")
    requests = deploy_requests(spec, "gs://b/m", image="img", labels={"cb_endpoint": "sst2"})
    resources = requests["deployed_model"]["dedicatedResources"]
    assert (resources["minReplicaCount"], resources["maxReplicaCount"]) == (2, 5)
    assert resources["machineSpec"] == {"machineType": "n1-standard-4", "acceleratorType": "NVIDIA_TESLA_T4",
                                        "acceleratorCount": 1}
    container = requests["model"]["containerSpec"]
    assert (container["healthRoute"], container["predictRoute"], container["ports"]) == (
        "/ping", "/invocations", [{"containerPort": 8080}])
    aiplatform_v1.Model.from_json(__import__("json").dumps(requests["model"]))  # the SDK's own field names
    aiplatform_v1.DeployedModel.from_json(__import__("json").dumps(requests["deployed_model"]))
