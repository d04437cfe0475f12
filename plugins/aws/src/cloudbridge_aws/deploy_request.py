"""Pure builders of the SageMaker endpoint requests: ``CreateModel``, ``CreateEndpointConfig``,
``CreateEndpoint`` and the Application Auto Scaling target/policy for min/max replicas.

The container is the cloudbridge serving image (``python -m cloudbridge.serving.serve``, the same
server and handler contract as a local endpoint: ``GET /ping``, ``POST /invocations``, a custom
``code/inference.py`` in the model archive or the default Hugging Face handler). SageMaker unpacks
``ModelDataUrl`` into ``/opt/ml/model`` and starts the image with the argument ``serve``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cloudbridge.errors import InvalidSpec
from cloudbridge.specs import EndpointSpec, Resources
from cloudbridge_aws.settings import INSTANCE_TYPE_RE, AwsSettings

__all__ = [
    "SCALABLE_DIMENSION",
    "VARIANT",
    "EndpointNames",
    "choose_endpoint_instance",
    "endpoint_names",
    "scaling_requests",
    "to_endpoint_config_request",
    "to_endpoint_request",
    "to_model_request",
    "validate_endpoint_spec",
]

VARIANT = "AllTraffic"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
#: Target of the default target-tracking policy: invocations per instance per minute.
INVOCATIONS_PER_INSTANCE = 70.0
_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


@dataclass(frozen=True)
class EndpointNames:
    """The three SageMaker resources behind one endpoint."""

    endpoint: str
    model: str
    config: str

    @property
    def scaling_resource_id(self) -> str:
        """Application Auto Scaling's id of the endpoint's variant."""
        return f"endpoint/{self.endpoint}/variant/{VARIANT}"


def validate_endpoint_spec(spec: EndpointSpec) -> None:
    """Refuse what SageMaker cannot do, naming the field."""
    if not _NAME_RE.match(spec.name):
        raise InvalidSpec(
            f"{spec.name!r} is not a valid SageMaker endpoint name: letters, digits and '-' (at most 63)",
            field="name",
        )
    if spec.min_replicas < 1:
        raise InvalidSpec(
            "SageMaker real-time endpoints keep at least one instance; min_replicas must be 1 or more",
            field="min_replicas",
        )
    if spec.max_replicas < spec.min_replicas:
        raise InvalidSpec(
            f"max_replicas ({spec.max_replicas}) is smaller than min_replicas ({spec.min_replicas})",
            field="max_replicas",
        )
    if spec.instance_type and not INSTANCE_TYPE_RE.match(spec.instance_type):
        raise InvalidSpec(
            f"{spec.instance_type!r} is not a SageMaker instance type (ml.FAMILY.SIZE)", field="instance_type"
        )


def endpoint_names(endpoint: str, suffix: str) -> EndpointNames:
    """Names of the model and endpoint config created for ``endpoint`` (``suffix`` makes them unique)."""
    base = endpoint[: 63 - len(suffix) - 1].rstrip("-")
    return EndpointNames(endpoint=endpoint, model=f"{base}-{suffix}", config=f"{base}-{suffix}")


def choose_endpoint_instance(spec: EndpointSpec, settings: AwsSettings, region: str, catalog: Any = None) -> str:
    """``instance_type``, else the ``instance_types`` setting, else the planner's cheapest fit."""
    if spec.instance_type:
        return spec.instance_type
    resources = Resources(accelerators=spec.accelerators)
    override = settings.instance_types.get(resources.accelerator_name or "cpu")
    if override:
        return override
    from cloudbridge.planner.placement import choose_instance

    return choose_instance("aws", resources, region, catalog=catalog).instance_type


def _tags(spec: EndpointSpec, settings: AwsSettings) -> list[dict[str, str]]:
    return [{"Key": "cloudbridge:endpoint", "Value": spec.name}] + [
        {"Key": k, "Value": v} for k, v in sorted(settings.tags.items())
    ]


def to_model_request(
    spec: EndpointSpec, settings: AwsSettings, *, names: EndpointNames, model_data_url: str, image: str
) -> dict[str, Any]:
    """``CreateModel``: the serving image, the model archive and the serving environment."""
    if not settings.role_arn:
        raise InvalidSpec(
            "no SageMaker execution role is set",
            field="settings.aws.role_arn",
            hint="set role_arn in the [aws] table of config.toml or CLOUDBRIDGE_AWS_ROLE_ARN",
        )
    # The server listens on every interface inside the container (SageMaker's port 8080).
    env = {"CLOUDBRIDGE_SERVE_HOST": "0.0.0.0", **spec.env}
    request: dict[str, Any] = {
        "ModelName": names.model,
        "ExecutionRoleArn": settings.role_arn,
        "PrimaryContainer": {
            "Image": image,
            "ModelDataUrl": model_data_url,
            "Environment": dict(sorted(env.items())),
        },
        "Tags": _tags(spec, settings),
    }
    if settings.subnets:
        request["VpcConfig"] = {
            "Subnets": list(settings.subnets),
            "SecurityGroupIds": list(settings.security_group_ids),
        }
    return request


def to_endpoint_config_request(
    spec: EndpointSpec, settings: AwsSettings, *, names: EndpointNames, instance_type: str
) -> dict[str, Any]:
    """``CreateEndpointConfig``: one variant with ``min_replicas`` instances."""
    return {
        "EndpointConfigName": names.config,
        "ProductionVariants": [
            {
                "VariantName": VARIANT,
                "ModelName": names.model,
                "InitialInstanceCount": spec.min_replicas,
                "InstanceType": instance_type,
                "InitialVariantWeight": 1.0,
            }
        ],
        "Tags": _tags(spec, settings),
    }


def to_endpoint_request(spec: EndpointSpec, settings: AwsSettings, *, names: EndpointNames) -> dict[str, Any]:
    """``CreateEndpoint``."""
    return {"EndpointName": names.endpoint, "EndpointConfigName": names.config, "Tags": _tags(spec, settings)}


def scaling_requests(spec: EndpointSpec, names: EndpointNames) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``RegisterScalableTarget`` and ``PutScalingPolicy`` arguments, or ``None`` when min == max."""
    if spec.max_replicas <= spec.min_replicas:
        return None
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": names.scaling_resource_id,
        "ScalableDimension": SCALABLE_DIMENSION,
        "MinCapacity": spec.min_replicas,
        "MaxCapacity": spec.max_replicas,
    }
    policy = {
        "PolicyName": f"{names.endpoint}-invocations",
        "ServiceNamespace": "sagemaker",
        "ResourceId": names.scaling_resource_id,
        "ScalableDimension": SCALABLE_DIMENSION,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": INVOCATIONS_PER_INSTANCE,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleInCooldown": 300,
            "ScaleOutCooldown": 60,
        },
    }
    return target, policy
