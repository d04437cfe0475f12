"""SageMaker endpoints beyond the conformance suite: request builders, auto scaling, clean deletes."""

from __future__ import annotations

import io
import json
import os
import tarfile
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from cloudbridge_aws.deploy_request import (
    choose_endpoint_instance,
    endpoint_names,
    scaling_requests,
    to_endpoint_config_request,
    to_endpoint_request,
    to_model_request,
    validate_endpoint_spec,
)
from cloudbridge_aws.settings import AwsSettings

from cloudbridge.errors import InvalidSpec, NotFound
from cloudbridge.planner.catalog import load_catalog
from cloudbridge.specs import EndpointSpec
from cloudbridge.testing.emulators import FAKE_ACCOUNT_ID

GOLDEN = Path(__file__).parent / "golden"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/cloudbridge-serve:0.1.0"


def assert_valid(service: str, operation: str, params: dict[str, Any]) -> None:
    import botocore.session
    from botocore.validate import validate_parameters

    model = botocore.session.get_session().get_service_model(service).operation_model(operation)
    validate_parameters(params, model.input_shape)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
    (root / "model.safetensors").write_bytes(os.urandom(2048))
    return root


def test_golden_endpoint_requests() -> None:
    settings = AwsSettings(region="us-east-1", bucket="cb-bucket", role_arn="arn:aws:iam::123456789012:role/sm")
    spec = EndpointSpec(
        name="sst2-endpoint",
        model="s3://cb-bucket/runs/sst2/model.tar.gz",
        accelerators="T4",
        min_replicas=1,
        max_replicas=4,
        env={"LOG_LEVEL": "info"},
    )
    names = endpoint_names(spec.name, "cb250101120000ab12")
    instance = choose_endpoint_instance(
        spec, settings, "us-east-1", load_catalog(include_plugins=False, include_env=False)
    )
    assert instance == "ml.g4dn.xlarge"
    requests = {
        "CreateModel": to_model_request(spec, settings, names=names, model_data_url=spec.model, image=IMAGE),
        "CreateEndpointConfig": to_endpoint_config_request(spec, settings, names=names, instance_type=instance),
        "CreateEndpoint": to_endpoint_request(spec, settings, names=names),
    }
    target, policy = scaling_requests(spec, names)  # type: ignore[misc]
    for operation, params in requests.items():
        assert_valid("sagemaker", operation, params)
    assert_valid("application-autoscaling", "RegisterScalableTarget", target)
    assert_valid("application-autoscaling", "PutScalingPolicy", policy)
    requests["RegisterScalableTarget"] = target
    requests["PutScalingPolicy"] = policy
    rendered = json.dumps(requests, indent=2, sort_keys=True) + "\n"
    path = GOLDEN / "endpoint_requests.json"
    if os.environ.get("CLOUDBRIDGE_UPDATE_GOLDEN") == "1":
        path.write_text(rendered, encoding="utf-8")
    assert rendered == path.read_text(encoding="utf-8")
    assert requests["CreateEndpointConfig"]["ProductionVariants"][0]["InitialInstanceCount"] == 1
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    assert scaling_requests(spec.model_copy(update={"max_replicas": 1}), names) is None


def test_endpoint_bad_input() -> None:
    with pytest.raises(InvalidSpec, match="min_replicas: SageMaker real-time endpoints keep at least one instance"):
        validate_endpoint_spec(EndpointSpec(name="e1", model="s3://b/m.tar.gz", min_replicas=0, max_replicas=2))
    with pytest.raises(InvalidSpec, match="name: 'my_endpoint' is not a valid SageMaker endpoint name"):
        validate_endpoint_spec(EndpointSpec(name="my_endpoint", model="s3://b/m.tar.gz"))
    with pytest.raises(InvalidSpec, match=r"max_replicas: max_replicas \(1\) is smaller than min_replicas \(2\)"):
        validate_endpoint_spec(EndpointSpec(name="e1", model="s3://b/m.tar.gz", min_replicas=2, max_replicas=1))


def test_autoscaling_registered_and_everything_deleted(provider: Any, model_dir: Path, aws_env: Any) -> None:
    name = f"cb-{uuid.uuid4().hex[:8]}"
    endpoint = provider.deploy.deploy(EndpointSpec(name=name, model=str(model_dir), min_replicas=1, max_replicas=3))
    aas = aws_env.client("application-autoscaling")
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [
        (f"endpoint/{name}/variant/AllTraffic", 1, 3)
    ]
    policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert [p["PolicyType"] for p in policies] == ["TargetTrackingScaling"]

    sagemaker = aws_env.client("sagemaker")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint.extra["config_name"])
    model = sagemaker.describe_model(ModelName=endpoint.extra["model_name"])
    assert config["ProductionVariants"][0]["ModelName"] == endpoint.extra["model_name"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == endpoint.model
    # the default serving image: moto's account, the region, the installed core's version as the tag
    expected_image = (
        f"{FAKE_ACCOUNT_ID}.dkr.ecr.us-east-1.amazonaws.com/cloudbridge-serve:{version('cloudbridge-ai')}"
    )
    assert model["PrimaryContainer"]["Image"] == expected_image
    assert endpoint.extra["image"] == expected_image

    provider.deploy.delete(name)
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert sagemaker.list_models()["Models"] == []
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []


def test_refused_scaling_policy_deregisters_the_target(provider: Any, model_dir: Path, aws_env: Any) -> None:
    """The scalable target is registered, then moto refuses the policy: nothing is left behind."""
    name = f"cb-{uuid.uuid4().hex[:8]}"
    client = provider.session.client("application-autoscaling")
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    def unknown_policy_type(params: dict[str, Any], **_: Any) -> None:
        params["PolicyType"] = "NoSuchScaling"  # moto answers ValidationException, as AWS does

    client.meta.events.register("before-call.application-autoscaling", record)
    client.meta.events.register("before-parameter-build.application-autoscaling.PutScalingPolicy", unknown_policy_type)
    try:
        with pytest.raises(InvalidSpec, match=r"'NoSuchScaling' at 'policyType' failed to satisfy constraint"):
            provider.deploy.deploy(EndpointSpec(name=name, model=str(model_dir), min_replicas=1, max_replicas=3))
    finally:
        client.meta.events.unregister("before-call.application-autoscaling", record)
        client.meta.events.unregister(
            "before-parameter-build.application-autoscaling.PutScalingPolicy", unknown_policy_type
        )
    assert calls[:2] == ["RegisterScalableTarget", "PutScalingPolicy"]
    assert calls[-1] == "DeregisterScalableTarget"
    aas = aws_env.client("application-autoscaling")
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    sagemaker = aws_env.client("sagemaker")
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert sagemaker.list_models()["Models"] == []


def test_model_archive_is_content_addressed_with_handler(provider: Any, model_dir: Path, tmp_path: Path) -> None:
    handler = tmp_path / "inference.py"
    handler.write_text("def model_fn(d):\n    return d\n\ndef predict_fn(x, m):\n    return x\n")
    spec = EndpointSpec(name="e-handler", model=str(model_dir), handler=str(handler))
    uri = provider.deploy.model_data_url(spec)
    assert uri == provider.deploy.model_data_url(spec), "same content, same archive"
    with tarfile.open(fileobj=io.BytesIO(provider.storage.read_bytes(uri))) as tar:
        assert sorted(tar.getnames()) == ["code/inference.py", "config.json", "model.safetensors"]
        assert b"predict_fn" in tar.extractfile("code/inference.py").read()  # type: ignore[union-attr]


def test_model_from_a_training_output(provider: Any, bucket: str) -> None:
    """A training job's outputs_uri (…/output/) deploys its model.tar.gz."""
    provider.storage.write_bytes(f"s3://{bucket}/runs/job-1/output/model.tar.gz", b"archive")
    spec = EndpointSpec(name="e-from-job", model=f"s3://{bucket}/runs/job-1/output/")
    assert provider.deploy.model_data_url(spec) == f"s3://{bucket}/runs/job-1/output/model.tar.gz"
    with pytest.raises(NotFound, match="model archive does not exist: s3://"):
        provider.deploy.model_data_url(spec.model_copy(update={"model": f"s3://{bucket}/runs/nothing/"}))
