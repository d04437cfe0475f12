"""Pure builders of the Azure ML managed online endpoint REST bodies (no call, no clock).

An endpoint is three resources: the registered *model* (``models/NAME/versions/1``, ``modelUri`` the
blob folder of a Hugging Face model), the *online endpoint* (key auth) and one *deployment*
(``blue``) that serves the model in cloudbridge's inference container: the same contract as every
provider (``GET /ping``, ``POST /invocations``, the model mounted at ``AZUREML_MODEL_DIR``). The
deployment starts with ``min_replicas`` instances (``sku.capacity``) and the ``Default`` scale type
(the only one managed deployments take); growing to ``max_replicas`` is the job of an Azure Monitor
autoscale setting (:mod:`cloudbridge_azure.autoscale`).
"""

from __future__ import annotations

import re
from typing import Any

from cloudbridge.errors import InvalidSpec
from cloudbridge.specs import EndpointSpec
from cloudbridge_azure.job_request import blob_url
from cloudbridge_azure.settings import VM_SIZE_RE, AzureSettings

__all__ = ["DEPLOYMENT", "check_replicas", "deployment_body", "endpoint_body", "model_body", "model_name"]

#: The one deployment of a cloudbridge endpoint (all traffic goes to it).
DEPLOYMENT = "blue"
DEFAULT_INSTANCE = "Standard_DS3_v2"
_ENDPOINT_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")
INFERENCE_CONFIG = {"livenessRoute": {"port": 8080, "path": "/ping"},
                    "readinessRoute": {"port": 8080, "path": "/ping"},
                    "scoringRoute": {"port": 8080, "path": "/invocations"}}


def check_name(spec: EndpointSpec) -> None:
    """Azure refuses endpoint names outside 3-32 letters, digits and '-' starting with a letter."""
    if not _ENDPOINT_RE.match(spec.name):
        raise InvalidSpec(f"Azure ML refuses the endpoint name {spec.name!r}: 3-32 letters, digits and '-', "
                          "starting with a letter", source=getattr(spec, "source", None), field="name")


def check_replicas(spec: EndpointSpec, settings: AzureSettings) -> None:
    """Refuse replica bounds Azure cannot honour, before anything is created (``InvalidSpec``)."""
    source = getattr(spec, "source", None)
    if spec.min_replicas < 1:
        raise InvalidSpec("Azure ML managed deployments need at least one instance", source=source,
                          field="min_replicas")
    if spec.max_replicas < spec.min_replicas:
        raise InvalidSpec(f"{spec.max_replicas} is below min_replicas ({spec.min_replicas})",
                          source=source, field="max_replicas")
    limit = settings.max_endpoint_instances
    if spec.max_replicas > limit:
        raise InvalidSpec(f"{spec.max_replicas} is above the {limit} instances one Azure ML "
                          "deployment may have", source=source, field="max_replicas",
                          hint="ask Azure for a higher limit, then set settings.azure.max_endpoint_instances")


def model_name(spec: EndpointSpec) -> str:
    """The registered model's name: ``cb-<endpoint name>``."""
    return f"cb-{spec.name}"


def model_body(model_uri: str, settings: AzureSettings) -> dict[str, Any]:
    """``PUT models/NAME/versions/1``: a custom model whose files are the blob folder ``model_uri``."""
    return {"properties": {"modelUri": blob_url(model_uri.rstrip("/"), settings), "modelType": "custom_model",
                           "description": "registered by cloudbridge"}}


def endpoint_body(spec: EndpointSpec, settings: AzureSettings) -> dict[str, Any]:
    """``PUT onlineEndpoints/NAME``: a managed endpoint with key authentication."""
    return {"location": settings.region or "eastus", "kind": "Managed", "identity": {"type": "SystemAssigned"},
            "tags": {"cloudbridge:endpoint": spec.name, **settings.tags},
            "properties": {"authMode": "Key", "description": f"cloudbridge endpoint {spec.name}", "traffic": {}}}


def deployment_body(spec: EndpointSpec, settings: AzureSettings, model_id: str) -> dict[str, Any]:
    """``PUT onlineEndpoints/NAME/deployments/blue``: the inference container on ``min_replicas`` instances."""
    instance = spec.instance_type or settings.instance_types.get("serving") or DEFAULT_INSTANCE
    if not VM_SIZE_RE.match(instance):
        raise InvalidSpec(f"{instance!r} is not an Azure VM size (Standard_...)", source=getattr(spec, "source", None),
                          field="instance_type")
    check_replicas(spec, settings)
    env = {"CB_TASK": spec.task, **spec.env}
    return {
        "location": settings.region or "eastus",
        "sku": {"name": "Default", "capacity": spec.min_replicas},
        "properties": {
            "endpointComputeType": "Managed",
            "instanceType": instance,
            "model": model_id,
            "environmentId": settings.serving_environment or settings.environment,
            "environmentVariables": dict(sorted(env.items())),
            "inferenceConfig": INFERENCE_CONFIG,
            "scaleSettings": {"scaleType": "Default"},
            "requestSettings": {"requestTimeout": "PT60S", "maxConcurrentRequestsPerInstance": 1},
        },
    }
