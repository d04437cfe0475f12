"""Managed online endpoints of the Azure ML fake: models, endpoints, deployments, keys and scoring.

* ``PUT``/``GET``/``DELETE models/NAME/versions/V`` keep a model whose ``modelUri`` is a blob folder;
* ``PUT``/``GET``/``DELETE onlineEndpoints/NAME`` (and ``GET onlineEndpoints``) keep endpoints with a
  ``scoringUri`` on this fake (``https://127.0.0.1:PORT/score/NAME``); ``POST .../listKeys`` gives keys;
* ``PUT onlineEndpoints/NAME/deployments/D`` downloads the model from Azurite and starts the real
  ``python -m cloudbridge.serving.serve`` on a free port with ``AZUREML_MODEL_DIR`` set, in the
  background: ``provisioningState`` is ``Creating``, then ``Succeeded`` once ``/ping`` answers, or
  ``Failed`` with the server's last words. ``quota`` faults refuse the deployment (QuotaExceeded).
  With ``run_servers = False`` (fast tests of the resources alone) nothing is started and the
  deployment is ``Succeeded`` at once; scoring it then answers 424.
* ``GET`` of a deployment reports ``sku.capacity``, or the default capacity of an enabled autoscale
  setting that targets it (:mod:`cloudbridge.testing.azureml.autoscale`).
* ``POST /score/NAME`` (with the endpoint key as bearer token) goes to the deployment's
  ``/invocations``; deleting a deployment stops its server; an endpoint with deployments cannot be
  deleted (as Azure ML).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from cloudbridge.testing.azureml.http import ApiError, Reply, Request, Router

__all__ = ["Endpoints"]

WS = (r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
      r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)")


class Endpoints:
    """Online endpoints of the fake workspace."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake
        self.models: dict[tuple[str, str], dict[str, Any]] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.servers: dict[tuple[str, str], tuple[subprocess.Popen, int, str]] = {}
        #: Start the real inference server for each deployment (False: Succeeded at once, no server).
        self.run_servers = True

    def routes(self, router: Router) -> None:
        """Add the routes to ``router``."""
        r = router
        r.add("PUT", WS + r"/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)", self._put_model)
        r.add("GET", WS + r"/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)", self._get_model)
        r.add("DELETE", WS + r"/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)", self._delete_model)
        r.add("GET", WS + r"/onlineEndpoints", self._list_endpoints)
        r.add("PUT", WS + r"/onlineEndpoints/(?P<name>[^/]+)", self._put_endpoint)
        r.add("GET", WS + r"/onlineEndpoints/(?P<name>[^/]+)", self._get_endpoint)
        r.add("DELETE", WS + r"/onlineEndpoints/(?P<name>[^/]+)", self._delete_endpoint)
        r.add("POST", WS + r"/onlineEndpoints/(?P<name>[^/]+)/listKeys", self._keys)
        r.add("PUT", WS + r"/onlineEndpoints/(?P<name>[^/]+)/deployments/(?P<dep>[^/]+)", self._put_deployment)
        r.add("GET", WS + r"/onlineEndpoints/(?P<name>[^/]+)/deployments/(?P<dep>[^/]+)", self._get_deployment)
        r.add("DELETE", WS + r"/onlineEndpoints/(?P<name>[^/]+)/deployments/(?P<dep>[^/]+)",
              self._delete_deployment)

    # ---- models ----------------------------------------------------------------------------------
    def _model_id(self, name: str, version: str) -> str:
        return f"{self.fake.workspace_id}/models/{name}/versions/{version}"

    def _put_model(self, request: Request) -> Reply:
        key = (request.groups["name"], request.groups["version"])
        props = dict(request.json().get("properties") or {})
        if not props.get("modelUri"):
            raise ApiError(400, "UserError", "modelUri is required.")
        self.models[key] = props
        return Reply(201, {"id": self._model_id(*key), "name": key[1], "properties": props})

    def _get_model(self, request: Request) -> Reply:
        key = (request.groups["name"], request.groups["version"])
        if key not in self.models:
            raise ApiError(404, "UserError", f"Model {key[0]}:{key[1]} not found.")
        return Reply(200, {"id": self._model_id(*key), "name": key[1], "properties": self.models[key]})

    def _delete_model(self, request: Request) -> Reply:
        key = (request.groups["name"], request.groups["version"])
        if self.models.pop(key, None) is None:
            raise ApiError(404, "UserError", f"Model {key[0]}:{key[1]} not found.")
        return Reply(200, None)

    # ---- endpoints -------------------------------------------------------------------------------
    def _endpoint_body(self, name: str) -> dict[str, Any]:
        body = json.loads(json.dumps(self.endpoints[name]))
        body.update(id=f"{self.fake.workspace_id}/onlineEndpoints/{name}", name=name)
        body["properties"].update(provisioningState="Succeeded", scoringUri=f"{self.fake.url}/score/{name}")
        return body

    def _put_endpoint(self, request: Request) -> Reply:
        name, body = request.groups["name"], request.json()
        created = name not in self.endpoints
        if created:
            body.setdefault("properties", {})["keys"] = {"primaryKey": uuid.uuid4().hex,
                                                         "secondaryKey": uuid.uuid4().hex}
        else:
            keys = self.endpoints[name]["properties"]["keys"]
            body.setdefault("properties", {})["keys"] = keys
        traffic = (body["properties"].get("traffic") or {})
        for dep in traffic:
            if (name, dep) not in self.deployments:
                raise ApiError(400, "BadArgument", f"Traffic routed to deployment {dep} that does not exist.")
        self.endpoints[name] = body
        reply = self._endpoint_body(name)
        reply["properties"].pop("keys", None)
        return Reply(201 if created else 200, reply)

    def _get_endpoint(self, request: Request) -> Reply:
        name = request.groups["name"]
        if name not in self.endpoints:
            raise ApiError(404, "EndpointNotFound", f"Could not find endpoint {name}.")
        reply = self._endpoint_body(name)
        reply["properties"].pop("keys", None)
        return Reply(200, reply)

    def _list_endpoints(self, request: Request) -> Reply:
        bodies = []
        for name in list(self.endpoints):
            body = self._endpoint_body(name)
            body["properties"].pop("keys", None)
            bodies.append(body)
        return Reply(200, {"value": bodies})

    def _delete_endpoint(self, request: Request) -> Reply:
        name = request.groups["name"]
        if name not in self.endpoints:
            raise ApiError(404, "EndpointNotFound", f"Could not find endpoint {name}.")
        if any(ep == name for ep, _ in self.deployments):
            raise ApiError(409, "Conflict", f"Endpoint {name} still has deployments; delete them first.")
        del self.endpoints[name]
        return Reply(200, None)

    def _keys(self, request: Request) -> Reply:
        name = request.groups["name"]
        if name not in self.endpoints:
            raise ApiError(404, "EndpointNotFound", f"Could not find endpoint {name}.")
        return Reply(200, self.endpoints[name]["properties"]["keys"])

    # ---- deployments -----------------------------------------------------------------------------
    def _put_deployment(self, request: Request) -> Reply:
        name, dep = request.groups["name"], request.groups["dep"]
        if name not in self.endpoints:
            raise ApiError(404, "EndpointNotFound", f"Could not find endpoint {name}.")
        body = request.json()
        props = body.setdefault("properties", {})
        if self.fake._take("quota", f"PUT {request.path}"):
            raise ApiError(400, "QuotaExceeded", f"Not enough quota available for {props.get('instanceType')} "
                           "in this region: requested cores exceed the approved quota.")
        scale_type = (props.get("scaleSettings") or {}).get("scaleType", "Default")
        if props.get("endpointComputeType") == "Managed" and scale_type != "Default":
            raise ApiError(400, "BadArgument", f"Scale type {scale_type} is not supported for managed online "
                           "deployments; only Default is (scale them with an Azure Monitor autoscale setting).")
        model_id = str(props.get("model") or "")
        parts = model_id.split("/")
        try:
            model = self.models[(parts[parts.index("models") + 1], parts[parts.index("versions") + 1])]
        except (ValueError, IndexError, KeyError):
            raise ApiError(400, "UserError", f"Model {model_id!r} was not found.") from None
        props["provisioningState"] = "Creating" if self.run_servers else "Succeeded"
        self.deployments[(name, dep)] = body
        if not self.run_servers:
            return Reply(201, {"name": dep, **body})
        threading.Thread(target=self._start_server, args=(name, dep, model["modelUri"], body), daemon=True).start()
        return Reply(201, {"name": dep, **body})

    def _start_server(self, name: str, dep: str, model_uri: str, body: dict[str, Any]) -> None:
        from cloudbridge.emulate import _base_env
        from cloudbridge.runtime.launch import free_port

        props = body["properties"]
        folder = tempfile.mkdtemp(prefix="cb-azureml-model-")
        try:
            if not self.fake.blobs.download_prefix(model_uri, folder):
                raise RuntimeError(f"no model files at {model_uri}")
            port = free_port()
            env = {**_base_env(), **(props.get("environmentVariables") or {}), "AZUREML_MODEL_DIR": folder}
            argv = [sys.executable, "-m", "cloudbridge.serving.serve", "--model-dir", folder, "--port", str(port)]
            child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
            self.servers[(name, dep)] = (child, port, folder)
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                if child.poll() is not None:
                    err = (child.stderr.read() if child.stderr else b"").decode(errors="replace")
                    raise RuntimeError(f"the inference server exited: {err.strip()[-400:]}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                        props["provisioningState"] = "Succeeded"
                        return
                except OSError:
                    time.sleep(0.3)
            raise RuntimeError("the inference server did not answer /ping within 180 s")
        except Exception as exc:  # noqa: BLE001 - any start failure is the deployment's failure
            props["provisioningState"] = "Failed"
            props["description"] = f"ResourceNotReady: {exc}"

    def _get_deployment(self, request: Request) -> Reply:
        key = (request.groups["name"], request.groups["dep"])
        if key not in self.deployments:
            raise ApiError(404, "DeploymentNotFound", f"Could not find deployment {key[1]} of endpoint {key[0]}.")
        resource_id = f"{self.fake.workspace_id}/onlineEndpoints/{key[0]}/deployments/{key[1]}"
        body = json.loads(json.dumps(self.deployments[key]))
        sku = body.setdefault("sku", {"name": "Default"})
        sku["capacity"] = self.fake.autoscale.capacity(resource_id, sku.get("capacity"))
        return Reply(200, {"id": resource_id, "name": key[1], **body})

    def _delete_deployment(self, request: Request) -> Reply:
        key = (request.groups["name"], request.groups["dep"])
        if self.deployments.pop(key, None) is None:
            raise ApiError(404, "DeploymentNotFound", f"Could not find deployment {key[1]} of endpoint {key[0]}.")
        self._stop_server(key)
        traffic = (self.endpoints.get(key[0], {}).get("properties") or {}).get("traffic") or {}
        traffic.pop(key[1], None)
        return Reply(200, None)

    def _stop_server(self, key: tuple[str, str]) -> None:
        found = self.servers.pop(key, None)
        if found is None:
            return
        child, _port, folder = found
        if child.poll() is None:
            import signal

            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        shutil.rmtree(folder, ignore_errors=True)

    # ---- scoring ---------------------------------------------------------------------------------
    def score(self, method: str, path: str, headers: Any, body: bytes) -> Reply:
        """``POST /score/NAME`` with the endpoint key -> the deployment's ``/invocations``."""
        name = path.rstrip("/").rsplit("/", 1)[-1]
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise ApiError(404, "EndpointNotFound", f"Could not find endpoint {name}.")
        keys = endpoint["properties"]["keys"]
        if headers.get("Authorization") not in (f"Bearer {keys['primaryKey']}", f"Bearer {keys['secondaryKey']}"):
            raise ApiError(401, "Unauthorized", "The endpoint key is missing or wrong.")
        traffic = endpoint["properties"].get("traffic") or {}
        dep = headers.get("azureml-model-deployment") or next((d for d, w in traffic.items() if w), None)
        server = self.servers.get((name, dep or ""))
        if server is None:
            raise ApiError(424, "NoDeployment", f"Endpoint {name} has no live deployment taking traffic.")
        request = urllib.request.Request(f"http://127.0.0.1:{server[1]}/invocations", data=body, method="POST",
                                         headers={"Content-Type": headers.get("Content-Type") or "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return Reply(response.status, None, {"Content-Type": "application/json"}, raw=response.read())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, None, {"Content-Type": "application/json"}, raw=exc.read())

    def stop(self) -> None:
        """Stop every serving process."""
        for key in list(self.servers):
            self._stop_server(key)
