"""The Vertex AI fake's models and endpoints (see :mod:`cloudbridge.testing.vertex_fake`).

``models:upload`` stores a Model whose ``artifactUri`` is a ``gs://`` folder; ``endpoints`` create an
Endpoint; ``:deployModel`` runs the model's container command (``$(VAR)`` expanded, as Vertex does; the
image itself is not run, this machine's Python is first on ``PATH``) on a free port with Vertex's serving
variables (``AIP_HTTP_PORT``, ``AIP_HEALTH_ROUTE``, ``AIP_PREDICT_ROUTE``, ``AIP_STORAGE_URI`` -- the
server reads the artifact from the GCS emulator itself), bound to 127.0.0.1 whatever the container asks
(``CLOUDBRIDGE_SERVE_HOST``), waits for its health route, and records the deployed model with its
replica counts; ``:predict`` forwards the
request body to the predict route; ``:undeployModel`` stops the server. Deleting an endpoint that
still has deployed models is refused (400 FAILED_PRECONDITION), as Vertex does.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

__all__ = ["route", "stop_all"]

_PARENT = r"/v1/(?P<parent>projects/[^/]+/locations/[^/]+)"


def _error(status: int, message: str) -> Exception:
    from cloudbridge.testing.vertex_fake import FakeError

    return FakeError(status, message)


def _get(table: dict[str, Any], key: str, what: str) -> dict[str, Any]:
    if key not in table:
        raise _error(404, f"The {what} does not exist: {key}")
    return table[key]


def route(fake: Any, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]) -> Any:
    """Answer a models/endpoints call, or 404."""
    from cloudbridge.testing.vertex_fake import rfc3339

    match = re.fullmatch(_PARENT + r"/models(?::upload|/(?P<id>[0-9]+))?", path)
    if match:
        parent, model_id = match.group("parent"), match.group("id")
        if method == "POST" and path.endswith(":upload"):
            model = dict(body.get("model") or {})
            if not str(model.get("artifactUri", "")).startswith("gs://"):
                raise _error(400, "Model.artifact_uri must be a gs:// URI.")
            if not (model.get("containerSpec") or {}).get("imageUri"):
                raise _error(400, "Model.container_spec.image_uri is required.")
            model_id = fake.next_id()
            model.update(name=f"{parent}/models/{model_id}", createTime=rfc3339(time.time()))
            with fake.lock:
                fake.models[model_id] = model
            return fake.operation(parent, "UploadModel", {"model": model["name"]})
        if method == "GET" and model_id:
            with fake.lock:
                return dict(_get(fake.models, model_id, "Model"))
        if method == "DELETE" and model_id:
            with fake.lock:
                _get(fake.models, model_id, "Model")
                if any(d.get("model", "").endswith(f"/models/{model_id}") for e in fake.endpoints.values()
                       for d in e.get("deployedModels", [])):
                    raise _error(400, f"Model {model_id} is deployed to an endpoint; undeploy it first.")
                del fake.models[model_id]
            return fake.operation(parent, "Delete")
    match = re.fullmatch(_PARENT + r"/endpoints(?:/(?P<id>[0-9]+)(?P<verb>:[a-zA-Z]+)?)?", path)
    if not match:
        raise _error(404, f"The fake has no route for {method} {path}.")
    parent, endpoint_id, verb = match.group("parent"), match.group("id"), match.group("verb")
    if method == "POST" and not endpoint_id:
        endpoint = {**body, "name": f"{parent}/endpoints/{fake.next_id()}", "createTime": rfc3339(time.time()),
                    "deployedModels": []}
        with fake.lock:
            fake.endpoints[endpoint["name"].rsplit("/", 1)[1]] = endpoint
        return fake.operation(parent, "CreateEndpoint", endpoint)
    if method == "GET" and not endpoint_id:
        with fake.lock:
            found = [json.loads(json.dumps(e)) for e in fake.endpoints.values() if e["name"].startswith(parent)]
        return {"endpoints": found}
    with fake.lock:
        endpoint = _get(fake.endpoints, endpoint_id, "Endpoint")
    if method == "GET" and not verb:
        with fake.lock:
            return json.loads(json.dumps(endpoint))
    if method == "DELETE" and not verb:
        if endpoint.get("deployedModels"):
            raise _error(400, f"Endpoint {endpoint_id} has deployed models; undeploy them first.")
        with fake.lock:
            del fake.endpoints[endpoint_id]
        return fake.operation(parent, "Delete")
    if verb == ":deployModel":
        return _deploy(fake, parent, endpoint, body)
    if verb == ":undeployModel":
        _undeploy(fake, endpoint, str(body.get("deployedModelId", "")))
        return fake.operation(parent, "UndeployModel", {})
    if verb == ":predict":
        return _predict(fake, endpoint, body)
    raise _error(404, f"The fake has no route for {method} {path}.")


def _servers(fake: Any) -> dict[str, Any]:
    if fake.serving is None:
        fake.serving = {}
    return fake.serving


def _deploy(fake: Any, parent: str, endpoint: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    from cloudbridge.emulate import _base_env
    from cloudbridge.runtime.launch import free_port

    deployed = dict(body.get("deployedModel") or {})
    model_id = str(deployed.get("model", "")).rsplit("/", 1)[-1]
    with fake.lock:
        model = dict(_get(fake.models, model_id, "Model"))
    resources = deployed.get("dedicatedResources") or {}
    if int(resources.get("minReplicaCount") or 0) < 1:
        raise _error(400, "DeployedModel.dedicated_resources.min_replica_count must be at least 1.")
    folder = tempfile.mkdtemp(prefix="cb-vertex-model-")
    artifact = model["artifactUri"].rstrip("/")
    container = model.get("containerSpec") or {}
    port = free_port()
    env = {**_base_env(), **{e["name"]: e.get("value", "") for e in container.get("env", [])},
           "AIP_HTTP_PORT": str(port), "AIP_HEALTH_ROUTE": container.get("healthRoute", "/ping"),
           "AIP_PREDICT_ROUTE": container.get("predictRoute", "/invocations"), "AIP_STORAGE_URI": artifact,
           "AIP_DEPLOYED_MODEL_ID": "pending", "CLOUDBRIDGE_SERVE_HOST": "127.0.0.1", "TMPDIR": folder}
    argv = [re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), arg)
            for arg in [*container.get("command", []), *container.get("args", [])]]
    child = subprocess.Popen(argv, env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
    health = f"http://127.0.0.1:{port}{env['AIP_HEALTH_ROUTE']}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if child.poll() is not None:
            err = (child.stderr.read() if child.stderr else b"").decode(errors="replace")[-500:]
            shutil.rmtree(folder, ignore_errors=True)
            return fake.operation(parent, "DeployModel", error={"code": 9, "message": f"Model server never became "
                                                                 f"ready: {err.strip()}"})
        try:
            with urllib.request.urlopen(health, timeout=2):
                break
        except OSError:
            time.sleep(0.2)
    deployed_id = fake.next_id()
    deployed.update(id=deployed_id, createTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    with fake.lock:
        endpoint["deployedModels"].append(deployed)
        endpoint["trafficSplit"] = {deployed_id: 100}
        _servers(fake)[deployed_id] = (child, port, folder, container.get("predictRoute", "/invocations"))
    return fake.operation(parent, "DeployModel", {"deployedModel": {"id": deployed_id}})


def _undeploy(fake: Any, endpoint: dict[str, Any], deployed_id: str) -> None:
    with fake.lock:
        if not any(d["id"] == deployed_id for d in endpoint["deployedModels"]):
            raise _error(404, f"DeployedModel {deployed_id} does not exist on the endpoint.")
        endpoint["deployedModels"] = [d for d in endpoint["deployedModels"] if d["id"] != deployed_id]
        endpoint.pop("trafficSplit", None)
        server = _servers(fake).pop(deployed_id, None)
    if server:
        _stop(server)


def _stop(server: Any) -> None:
    from cloudbridge.emulate import _stop as stop_children

    child, _, folder, _ = server
    stop_children([child])
    shutil.rmtree(folder, ignore_errors=True)


def _predict(fake: Any, endpoint: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    with fake.lock:
        deployed = list(endpoint["deployedModels"])
        server = _servers(fake).get(deployed[0]["id"]) if deployed else None
    if not server:
        raise _error(400, f"Endpoint {endpoint['name']} has no deployed model.")
    _, port, _, predict_route = server
    request = urllib.request.Request(f"http://127.0.0.1:{port}{predict_route}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            reply = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raise _error(400, f"The model server answered {exc.code}: {exc.read().decode(errors='replace')[:300]}") \
            from exc
    return {"predictions": reply.get("predictions", reply), "deployedModelId": deployed[0]["id"]}


def stop_all(fake: Any) -> None:
    """Stop every model server the fake started."""
    for server in list(_servers(fake).values()):
        _stop(server)
    _servers(fake).clear()
