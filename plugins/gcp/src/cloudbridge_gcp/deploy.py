"""Vertex AI endpoints: ``models.upload`` -> ``endpoints.create`` -> ``deployModel`` -> ``predict``.

* **Model.** A local model directory (plus ``handler`` as ``code/inference.py``) is uploaded to
  ``gs://STAGING/PREFIX/models/<endpoint>/``; a ``gs://`` folder is used as it is. The Model's
  container is cloudbridge's inference server (``serving_image``, default
  ``REGION-docker.pkg.dev/PROJECT/cloudbridge/serve:latest``, built from ``plugins/aws/docker/
  Dockerfile.serve``): ``python -m cloudbridge.serving.serve --model-dir $(AIP_STORAGE_URI)``,
  port 8080, health route ``/ping``, predict route ``/invocations``. The handler contract reads
  Vertex's ``{"instances": [...]}`` and answers ``{"predictions": [...]}``.
* **Endpoint.** One Endpoint per cloudbridge endpoint (display name = the spec's name, label
  ``cb_endpoint``), one DeployedModel with ``dedicatedResources``: the machine, ``minReplicaCount`` /
  ``maxReplicaCount`` and CPU-utilisation autoscaling (60 %); 100 % of the traffic.
* **Delete** (and any failure half-way through ``deploy``): undeploy every deployed model, delete the
  endpoint, delete the uploaded model(s) -- whatever of them exists.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from cloudbridge.errors import CloudbridgeError, ConflictError, InvalidSpec, NotFound
from cloudbridge.interfaces import Deploy, Endpoint
from cloudbridge.specs import EndpointSpec
from cloudbridge_gcp.custom_job import bucket_prefix
from cloudbridge_gcp.errors import gcp_errors, retry
from cloudbridge_gcp.labels import encode_value
from cloudbridge_gcp.machines import machine_spec
from cloudbridge_gcp.session import GcpSession

__all__ = ["VertexDeploy", "deploy_requests"]

READY = "DEPLOYED"
ENDPOINT_LABEL = "cb_endpoint"
DEFAULT_MACHINE = "n1-standard-4"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


def deploy_requests(spec: EndpointSpec, artifact_uri: str, *, image: str, labels: dict[str, str]) -> dict[str, Any]:
    """The ``Model``, ``Endpoint`` and ``DeployedModel`` (REST JSON) for ``spec``. Pure."""
    machine = machine_spec(spec.instance_type or DEFAULT_MACHINE)
    if spec.accelerators and "acceleratorType" not in machine:
        from cloudbridge_gcp.machines import ACCELERATOR_TYPES

        kind, _, count = spec.accelerators.partition(":")
        machine.update(acceleratorType=ACCELERATOR_TYPES.get(kind.upper(), kind.upper()),
                       acceleratorCount=int(count or 1))
    env = [{"name": "CLOUDBRIDGE_SERVE_HOST", "value": "0.0.0.0"}]  # inside the container
    env += [{"name": k, "value": v} for k, v in sorted(spec.env.items())]
    args = ["--model-dir", "$(AIP_STORAGE_URI)"] + (["--task", spec.task] if spec.task != "auto" else [])
    model = {
        "displayName": spec.name,
        "artifactUri": artifact_uri,
        "containerSpec": {"imageUri": image, "command": ["python", "-m", "cloudbridge.serving.serve"],
                          "args": args, "env": env,
                          "ports": [{"containerPort": 8080}], "healthRoute": "/ping", "predictRoute": "/invocations"},
        "labels": labels,
    }
    endpoint = {"displayName": spec.name, "labels": labels}
    deployed = {
        "displayName": spec.name,
        "dedicatedResources": {
            "machineSpec": machine,
            "minReplicaCount": max(spec.min_replicas, 1),
            "maxReplicaCount": max(spec.max_replicas, spec.min_replicas, 1),
            "autoscalingMetricSpecs": [{"metricName": "aiplatform.googleapis.com/prediction/online/cpu/utilization",
                                        "target": 60}],
        },
    }
    return {"model": model, "endpoint": endpoint, "deployed_model": deployed}


def _payload(payload: Any) -> list[Any]:
    if isinstance(payload, dict) and "instances" in payload:
        items = payload["instances"]
    elif isinstance(payload, dict) and "inputs" in payload:
        items = payload["inputs"]
    else:
        items = payload
    return items if isinstance(items, list) else [items]


class VertexDeploy(Deploy):
    """:class:`~cloudbridge.interfaces.Deploy` on Vertex AI endpoints."""

    def __init__(self, session: GcpSession, storage: Any) -> None:
        self.session = session
        self.settings = session.settings
        self.storage = storage

    def _image(self) -> str:
        return self.settings.serving_image or (
            f"{self.session.region}-docker.pkg.dev/{self.session.project}/cloudbridge/serve:latest")

    # ---- lookups -------------------------------------------------------------------------------
    def _find(self, name: str) -> Any:
        with gcp_errors("find the Vertex AI endpoint", resource=name):
            for endpoint in self.session.vertex("endpoints").list_endpoints(
                    request={"parent": self.session.parent, "filter": f'display_name="{name}"'},
                    retry=retry(self.settings.timeout)):
                if endpoint.display_name == name and ENDPOINT_LABEL in endpoint.labels:
                    return endpoint
        return None

    def _record(self, endpoint: Any) -> Endpoint:
        deployed = list(endpoint.deployed_models)
        return Endpoint(name=endpoint.display_name, provider="gcp", state=READY if deployed else "CREATING",
                        url=f"{self.settings.vertex_endpoint()}/v1/{endpoint.name}:predict",
                        model=deployed[0].model if deployed else None, native_id=endpoint.name,
                        extra={"deployed_models": [d.id for d in deployed]})

    def get(self, name: str) -> Endpoint:
        """The endpoint named ``name``; :class:`NotFound` when absent."""
        endpoint = self._find(name)
        if endpoint is None:
            raise NotFound(f"no Vertex AI endpoint named {name!r} in {self.session.parent}")
        return self._record(endpoint)

    def list(self) -> list[Endpoint]:
        """cloudbridge's endpoints in the region."""
        with gcp_errors("list Vertex AI endpoints"):
            return [self._record(e) for e in self.session.vertex("endpoints").list_endpoints(
                request={"parent": self.session.parent}, retry=retry(self.settings.timeout))
                if ENDPOINT_LABEL in e.labels]

    # ---- deploy --------------------------------------------------------------------------------
    def _artifact(self, spec: EndpointSpec) -> str:
        if spec.model.startswith("gs://"):
            uri = spec.model.rstrip("/")
            if not any(True for _ in self.storage.list(uri, recursive=True)):
                raise NotFound(f"no model files under {uri}", hint="check the model URI")
            if spec.handler:
                raise InvalidSpec("a handler can only be added to a local model directory", field="handler")
            return uri
        path = Path(spec.model).expanduser()
        if not path.is_dir():
            raise NotFound(f"model directory does not exist: {path}")
        if spec.handler and not Path(spec.handler).is_file():
            raise NotFound(f"handler file does not exist: {spec.handler}")
        uri = f"{bucket_prefix(self.settings)}/models/{spec.name}"
        for folder, _, files in os.walk(path):
            for file in sorted(files):
                local = Path(folder) / file
                self.storage.upload(local, f"{uri}/{local.relative_to(path).as_posix()}")
        if spec.handler:
            self.storage.upload(spec.handler, f"{uri}/code/inference.py")
        return uri

    def deploy(self, spec: EndpointSpec) -> Endpoint:
        """Upload the model, create the endpoint, deploy the model on it; undo everything if a step fails."""
        if not _NAME.match(spec.name):
            raise InvalidSpec(f"{spec.name!r} is not a Vertex AI endpoint name here (lower-case letters, digits "
                              "and '-', starting with a letter, at most 63)", source=spec.source, field="name")
        if self._find(spec.name) is not None:
            raise ConflictError(f"a Vertex AI endpoint named {spec.name!r} exists",
                                hint=f"delete it first: cloudbridge deploy delete {spec.name} --provider gcp")
        labels = {ENDPOINT_LABEL: encode_value(spec.name)[:63], **{
            k: encode_value(v)[:63] for k, v in self.settings.labels.items()}}
        requests = deploy_requests(spec, self._artifact(spec), image=self._image(), labels=labels)
        created: dict[str, str] = {}
        try:
            return self._create(requests, created)
        except BaseException as exc:
            left = self._teardown(created.get("endpoint"), [created["model"]] if "model" in created else [])
            if left and isinstance(exc, CloudbridgeError):
                exc.args = (f"{exc.args[0]}; {left}",) + exc.args[1:]
            raise

    def _create(self, requests: dict[str, Any], created: dict[str, str]) -> Endpoint:
        from google.cloud import aiplatform_v1

        parent, timeout = self.session.parent, self.settings.deploy_timeout
        models, endpoints = self.session.vertex("models"), self.session.vertex("endpoints")
        with gcp_errors("upload the model to Vertex AI"):
            model = aiplatform_v1.Model.from_json(json.dumps(requests["model"]))
            created["model"] = models.upload_model(parent=parent, model=model).result(timeout=timeout).model
        with gcp_errors("create the Vertex AI endpoint"):
            endpoint = aiplatform_v1.Endpoint.from_json(json.dumps(requests["endpoint"]))
            created["endpoint"] = endpoints.create_endpoint(parent=parent, endpoint=endpoint).result(
                timeout=timeout).name
        with gcp_errors("deploy the model on the Vertex AI endpoint"):
            deployed = aiplatform_v1.DeployedModel.from_json(json.dumps({**requests["deployed_model"],
                                                                         "model": created["model"]}))
            endpoints.deploy_model(endpoint=created["endpoint"], deployed_model=deployed,
                                   traffic_split={"0": 100}).result(timeout=timeout)
            return self._record(endpoints.get_endpoint(name=created["endpoint"]))

    def _teardown(self, endpoint_name: str | None, model_names: list[str]) -> str:
        """Undeploy, delete the endpoint, delete the models; returns what could not be removed ('' if all)."""
        endpoints, models = self.session.vertex("endpoints"), self.session.vertex("models")
        problems = []
        timeout = self.settings.deploy_timeout
        if endpoint_name:
            try:
                with gcp_errors("undeploy and delete the Vertex AI endpoint", resource=endpoint_name):
                    endpoint = endpoints.get_endpoint(name=endpoint_name)
                    for deployed in endpoint.deployed_models:
                        model_names.append(deployed.model)
                        endpoints.undeploy_model(endpoint=endpoint_name, deployed_model_id=deployed.id).result(
                            timeout=timeout)
                    endpoints.delete_endpoint(name=endpoint_name).result(timeout=timeout)
            except NotFound:
                pass
            except CloudbridgeError as exc:
                problems.append(f"endpoint {endpoint_name} may remain ({exc})")
        for model in dict.fromkeys(model_names):
            try:
                with gcp_errors("delete the Vertex AI model", resource=model):
                    models.delete_model(name=model).result(timeout=timeout)
            except NotFound:
                pass
            except CloudbridgeError as exc:
                problems.append(f"model {model} may remain ({exc})")
        return "; ".join(problems)

    def delete(self, name: str) -> None:
        """Undeploy, delete the endpoint and the uploaded model; :class:`NotFound` when absent."""
        endpoint = self._find(name)
        if endpoint is None:
            raise NotFound(f"no Vertex AI endpoint named {name!r} in {self.session.parent}")
        left = self._teardown(endpoint.name, [])
        if left:
            raise CloudbridgeError(f"could not delete everything of endpoint {name}: {left}")

    def invoke(self, name: str, payload: Any) -> Any:
        """``predict`` with ``{"instances": [...]}``; returns ``{"predictions": [...]}``."""
        from google.protobuf import json_format, struct_pb2

        endpoint = self._find(name)
        if endpoint is None:
            raise NotFound(f"no Vertex AI endpoint named {name!r} in {self.session.parent}")
        instances = [json_format.ParseDict(item, struct_pb2.Value()) for item in _payload(payload)]
        with gcp_errors("predict", resource=name):
            answer = self.session.vertex("predict").predict(endpoint=endpoint.name, instances=instances,
                                                            timeout=self.settings.timeout)
        return {"predictions": [json_format.MessageToDict(p) for p in answer._pb.predictions]}
