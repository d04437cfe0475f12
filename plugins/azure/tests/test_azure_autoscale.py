"""Azure Monitor autoscale of managed online endpoints, on the Azure ML fake.

These tests check the resources (model, endpoint, deployment, autoscale setting) and their clean-up,
so the fake starts no inference server here (``run_servers = False``: a deployment is ready at once);
serving itself is proven by the deploy conformance suite in test_azure_deploy.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloudbridge.errors import AuthenticationError, ConflictError, InvalidSpec, NotFound, TransientError
from cloudbridge.specs import EndpointSpec
from cloudbridge.testing.azurite import ACCOUNT

MONITOR = "/providers/Microsoft.Insights/autoscalesettings"


@pytest.fixture
def fake(fake_env: Any) -> Iterator[Any]:
    """The fake with serving switched off (restored afterwards: the fake lives for the session)."""
    fake_env.endpoints.run_servers = False
    try:
        yield fake_env
    finally:
        fake_env.endpoints.run_servers = True


@pytest.fixture
def model(fake_provider: Any, container: str, tmp_path: Path) -> str:
    """A (pretend) model folder in Blob storage: the fake does not load it without a server."""
    (tmp_path / "config.json").write_text("{}")
    base = f"az://{ACCOUNT}/{container}/models/m-{uuid.uuid4().hex[:6]}"
    fake_provider.storage.upload(tmp_path / "config.json", f"{base}/config.json")
    return base


def _spec(model: str, low: int = 1, high: int = 3) -> EndpointSpec:
    return EndpointSpec(name=f"cb-{uuid.uuid4().hex[:8]}", model=model, provider="azure", min_replicas=low,
                        max_replicas=high)


def _deployment_id(fake: Any, name: str) -> str:
    return f"{fake.workspace_id}/onlineEndpoints/{name}/deployments/blue"


def _nothing_left(fake: Any, name: str) -> None:
    assert name not in fake.endpoints.endpoints
    assert not [key for key in fake.endpoints.deployments if key[0] == name]
    assert (f"cb-{name}", "1") not in fake.endpoints.models
    assert not fake.autoscale.targeting(_deployment_id(fake, name))
    assert f"cb-{name}-blue-autoscale" not in fake.autoscale.settings


def test_min_below_max_creates_one_setting_and_delete_removes_it(fake_provider: Any, fake: Any, model: str) -> None:
    deploy, spec = fake_provider.deploy, _spec(model, 1, 3)
    endpoint = deploy.deploy(spec)
    target = _deployment_id(fake, spec.name)
    settings = fake.autoscale.targeting(target)
    assert len(settings) == 1
    setting = settings[0]
    assert setting["name"] == f"cb-{spec.name}-blue-autoscale" and setting["properties"]["enabled"] is True
    profile = setting["properties"]["profiles"][0]
    assert profile["capacity"] == {"minimum": "1", "maximum": "3", "default": "1"}
    rules = profile["rules"]
    assert {r["metricTrigger"]["metricName"] for r in rules} == {"CpuUtilizationPercentage"}
    assert {r["metricTrigger"]["metricResourceUri"] for r in rules} == {target}
    assert [(r["metricTrigger"]["operator"], r["scaleAction"]["direction"]) for r in rules] == [
        ("GreaterThan", "Increase"), ("LessThan", "Decrease")]
    assert endpoint.state == "InService" and endpoint.extra["autoscale"] == setting["name"]
    assert (endpoint.extra["min_replicas"], endpoint.extra["max_replicas"], endpoint.extra["instances"]) == (1, 3, 1)

    with pytest.raises(ConflictError):  # a second deploy of the name creates nothing
        deploy.deploy(spec)
    deploy.autoscale.create(spec, target)  # create_or_update again: the same setting, overwritten
    assert len(fake.autoscale.targeting(target)) == 1 and len(fake.autoscale.settings) >= 1

    deploy.delete(spec.name)
    _nothing_left(fake, spec.name)

    again = deploy.deploy(spec)  # redeploy after delete: again exactly one
    try:
        assert len(fake.autoscale.targeting(target)) == 1 and again.extra["max_replicas"] == 3
    finally:
        deploy.delete(spec.name)
    _nothing_left(fake, spec.name)


def test_equal_min_and_max_creates_no_setting(fake_provider: Any, fake: Any, model: str) -> None:
    deploy, spec = fake_provider.deploy, _spec(model, 2, 2)
    endpoint = deploy.deploy(spec)
    try:
        assert not fake.autoscale.targeting(_deployment_id(fake, spec.name))
        assert not any(path.endswith("autoscalesettings/" + f"cb-{spec.name}-blue-autoscale") and method == "PUT"
                       for method, path in fake.requests)
        assert (endpoint.extra["min_replicas"], endpoint.extra["max_replicas"]) == (2, 2)
        assert endpoint.extra["autoscale"] is None and endpoint.extra["instances"] == 2
    finally:
        deploy.delete(spec.name)  # deleting the absent setting is fine
    _nothing_left(fake, spec.name)


def test_the_fake_scales_the_deployment_to_the_default_within_bounds(
        fake_provider: Any, fake: Any, model: str) -> None:
    deploy, spec = fake_provider.deploy, _spec(model, 2, 4)
    deploy.deploy(spec)
    try:
        target = _deployment_id(fake, spec.name)
        put = _raw_put(deploy, f"cb-{spec.name}-blue-autoscale")
        body = fake.autoscale.targeting(target)[0]
        body = {"location": body["location"], "properties": dict(body["properties"])}
        body["properties"]["profiles"] = [{**body["properties"]["profiles"][0],
                                          "capacity": {"minimum": "2", "maximum": "4", "default": "3"}}]
        put(body)
        assert deploy._deployment(spec.name)["sku"]["capacity"] == 3 and deploy.get(spec.name).extra["instances"] == 3

        bad_default = {**body, "properties": {**body["properties"], "profiles": [
            {**body["properties"]["profiles"][0], "capacity": {"minimum": "2", "maximum": "4", "default": "5"}}]}}
        no_profile = {**body, "properties": {**body["properties"], "profiles": []}}
        no_target = {**body, "properties": {**body["properties"],
                                            "targetResourceUri": _deployment_id(fake, "cb-nothere")}}
        for wrong, words in ((bad_default, "default capacity"), (no_profile, "profiles"),
                             (no_target, "was not found")):
            with pytest.raises(InvalidSpec, match=words):
                put(wrong)
        assert deploy._deployment(spec.name)["sku"]["capacity"] == 3, "refused bodies changed nothing"
    finally:
        deploy.delete(spec.name)
    _nothing_left(fake, spec.name)


def _raw_put(deploy: Any, name: str) -> Any:
    """PUT an autoscale setting body as it goes on the wire (no SDK model in between)."""
    s = deploy.settings
    url = (f"{deploy.base}/subscriptions/{s.subscription_id}/resourcegroups/{s.resource_group}{MONITOR}/{name}"
           "?api-version=2022-10-01")
    return lambda body: deploy._call("PUT", "", body, action="put the setting", resource=name, url=url)


def test_deleting_the_endpoint_elsewhere_orphans_the_setting_and_delete_removes_it(
        fake_provider: Any, fake: Any, model: str) -> None:
    deploy, spec = fake_provider.deploy, _spec(model, 1, 2)
    deploy.deploy(spec)
    for path in (f"/onlineEndpoints/{spec.name}/deployments/blue", f"/onlineEndpoints/{spec.name}"):
        deploy._call("DELETE", path, action="delete as another client would", resource=spec.name)
    setting = f"cb-{spec.name}-blue-autoscale"
    assert setting in fake.autoscale.orphans()  # what real Azure leaves behind
    deploy.delete(spec.name)
    assert setting not in fake.autoscale.orphans() and setting not in fake.autoscale.settings
    with pytest.raises(NotFound):
        deploy.delete(spec.name)


def test_missing_monitoring_role_fails_the_deploy_and_leaves_nothing(
        fake_provider: Any, fake: Any, model: str) -> None:
    spec = _spec(model, 1, 3)
    fake.inject("auth", path=r"^PUT .*/autoscalesettings/")
    with pytest.raises(AuthenticationError, match="everything created for it was deleted") as info:
        fake_provider.deploy.deploy(spec)
    assert "Monitoring Contributor" in str(info.value)
    _nothing_left(fake, spec.name)


def test_half_failed_deploy_then_delete_leaves_no_setting(fake_provider: Any, fake: Any, model: str) -> None:
    """Routing traffic fails after the setting exists, and so does the clean-up: ``delete`` finishes it."""
    deploy, spec = fake_provider.deploy, _spec(model, 1, 3)
    attempts = deploy.settings.retry_total + 1
    fake.inject("throttle", attempts, path=rf"^PUT .*/onlineEndpoints/{spec.name}$", skip=1)  # 2nd PUT: traffic
    fake.inject("server", attempts, path=r"^DELETE .*/autoscalesettings/")
    with pytest.raises(TransientError, match="cleaning up failed") as info:
        deploy.deploy(spec)
    assert f"cloudbridge undeploy {spec.name}" in str(info.value)
    assert len(fake.autoscale.targeting(_deployment_id(fake, spec.name))) == 1, "the setting was left"
    deploy.delete(spec.name)
    _nothing_left(fake, spec.name)


@pytest.mark.parametrize(("low", "high", "words"), [(3, 1, "max_replicas: 1 is below min_replicas (3)"),
                                                    (1, 60, "max_replicas: 60 is above the 50 instances")])
def test_bad_replica_bounds_are_refused_before_any_call(
        fake_provider: Any, fake: Any, model: str, low: int, high: int, words: str) -> None:
    before = len(fake.requests)
    with pytest.raises(InvalidSpec) as info:
        fake_provider.deploy.deploy(_spec(model, low, high))
    assert words in str(info.value) and info.value.exit_code == 2 and "\n" not in str(info.value)
    assert len(fake.requests) == before, "nothing was asked of Azure"


def test_cli_bad_replica_bounds_is_one_line_exit_2(
        fake_settings: dict[str, Any], fake: Any, model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from cloudbridge.cli.main import build_app

    for key, value in fake_settings.items():
        monkeypatch.setenv(f"CLOUDBRIDGE_AZURE_{key.upper()}", str(value))
    spec = tmp_path / "endpoint.yaml"
    spec.write_text(f"name: cb-bad\nprovider: azure\nmodel: {model}\nmin_replicas: 4\nmax_replicas: 2\n")
    before = len(fake.requests)
    result = CliRunner().invoke(build_app(), ["deploy", str(spec)], prog_name="cloudbridge")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "max_replicas: 2 is below min_replicas (4)" in lines[0]
    assert len(fake.requests) == before and "cb-bad" not in fake.endpoints.endpoints


def test_autoscale_body_matches_the_sdk_serialisation() -> None:
    """The pure body survives azure-mgmt-monitor's own model round trip unchanged (wire shape)."""
    from azure.mgmt.monitor.models import AutoscaleSettingResource
    from cloudbridge_azure.autoscale import autoscale_body
    from cloudbridge_azure.settings import AzureSettings

    body = autoscale_body(_spec("az://a1b/c/m", 2, 5), AzureSettings(region="westeurope"), "/sub/x/deployments/blue")
    assert AutoscaleSettingResource.deserialize(body).serialize() == body
    assert body["properties"]["profiles"][0]["capacity"] == {"minimum": "2", "maximum": "5", "default": "2"}
    assert body["location"] == "westeurope"
