"""Managed online endpoints on the Azure ML fake, which serves by running the real local inference
server: the shared deploy conformance suite, the request bodies, and clean-up after a failed deploy."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from cloudbridge.errors import InvalidSpec, NotFound, QuotaExceeded
from cloudbridge.specs import EndpointSpec
from cloudbridge.testing.azurite import ACCOUNT
from cloudbridge.testing.deploy import DeployConformance, build_tiny_model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))


@pytest.fixture
def model_in_blob(fake_provider: Any, container: str, tiny_model: Path) -> str:
    base = f"az://{ACCOUNT}/{container}/models/tiny-{uuid.uuid4().hex[:6]}"
    for path in tiny_model.rglob("*"):
        if path.is_file():
            fake_provider.storage.upload(path, f"{base}/{path.relative_to(tiny_model).as_posix()}")
    return base


class TestAzureMLDeployConformance(DeployConformance):
    """deploy, get, list, invoke (real predictions), bad payload, duplicate, delete on Azure ML."""

    @pytest.fixture
    def deploy(self, fake_provider: Any) -> Any:
        return fake_provider.deploy

    @pytest.fixture
    def model_uri(self, model_in_blob: str) -> str:
        return model_in_blob

    @pytest.fixture
    def endpoint_spec(self, model_uri: str) -> EndpointSpec:
        return _spec(model_uri, min_replicas=1, max_replicas=3)

    def check_endpoint(self, endpoint: Any, spec: EndpointSpec) -> None:
        """Also: autoscale bounds (from the Azure Monitor setting), all traffic on the one deployment,
        the scoring URI of the fake."""
        super().check_endpoint(endpoint, spec)
        assert (endpoint.extra["min_replicas"], endpoint.extra["max_replicas"]) == (1, 3)
        assert endpoint.extra["autoscale"] == f"cb-{spec.name}-blue-autoscale"
        assert endpoint.extra["traffic"] == {"blue": 100} and endpoint.url.endswith(f"/score/{spec.name}")


def _spec(model: str, **fields: Any) -> EndpointSpec:
    return EndpointSpec(name=f"cb-{uuid.uuid4().hex[:8]}", model=model, provider="azure", **fields)


def test_quota_on_the_deployment_leaves_nothing_behind(fake_provider: Any, fake_env: Any, model_in_blob: str) -> None:
    spec = _spec(model_in_blob)
    fake_env.inject("quota")
    with pytest.raises(QuotaExceeded, match="everything created for it was deleted"):
        fake_provider.deploy.deploy(spec)
    with pytest.raises(NotFound):
        fake_provider.deploy.get(spec.name)
    assert ("cb-" + spec.name, "1") not in fake_env.endpoints.models


def test_delete_after_a_half_failed_deploy(fake_provider: Any, fake_env: Any, model_in_blob: str) -> None:
    """An endpoint whose deployment failed (left by another client) is deleted whole."""
    spec = _spec(model_in_blob)
    deploy = fake_provider.deploy
    model = deploy._call("PUT", f"/models/cb-{spec.name}/versions/1", {"properties": {"modelUri": "http://x/y"}},
                         action="register", resource=spec.name)
    from cloudbridge_azure.deploy_request import deployment_body, endpoint_body

    deploy._call("PUT", f"/onlineEndpoints/{spec.name}", endpoint_body(spec, deploy.settings), action="a",
                 resource=spec.name)
    deploy._call("PUT", f"/onlineEndpoints/{spec.name}/deployments/blue",
                 deployment_body(spec, deploy.settings, model["id"]), action="b", resource=spec.name)
    import time

    deadline = time.monotonic() + 60
    while deploy.get(spec.name).state != "Failed" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert deploy.get(spec.name).state == "Failed"
    deploy.delete(spec.name)
    with pytest.raises(NotFound):
        deploy.get(spec.name)
    assert not fake_env.endpoints.deployments and (f"cb-{spec.name}", "1") not in fake_env.endpoints.models


def test_bad_endpoint_input_creates_nothing(fake_provider: Any, fake_env: Any, model_in_blob: str) -> None:
    before = dict(fake_env.endpoints.endpoints)
    with pytest.raises(InvalidSpec, match="refuses the endpoint name"):
        fake_provider.deploy.deploy(EndpointSpec(name="x_bad_name", model=model_in_blob, provider="azure"))
    with pytest.raises(InvalidSpec, match="instance_type"):
        fake_provider.deploy.deploy(_spec(model_in_blob, instance_type="ml.g5.xlarge"))
    assert fake_env.endpoints.endpoints == before


def test_deployment_body_carries_the_container_contract() -> None:
    from cloudbridge_azure.deploy_request import deployment_body
    from cloudbridge_azure.settings import AzureSettings

    body = deployment_body(_spec("az://a1b/c/m", min_replicas=2, max_replicas=4), AzureSettings(), "MODEL-ID")
    props = body["properties"]
    assert body["sku"]["capacity"] == 2 and props["model"] == "MODEL-ID"
    assert props["scaleSettings"] == {"scaleType": "Default"}, "managed deployments scale through Azure Monitor"
    assert props["inferenceConfig"]["scoringRoute"]["path"] == "/invocations"
    assert props["inferenceConfig"]["livenessRoute"]["path"] == "/ping"
