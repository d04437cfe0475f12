"""Azure ML managed online endpoints: deploy, get, list, invoke and delete (ARM REST through azure-core).

The bodies come from the pure :mod:`cloudbridge_azure.deploy_request`; calls go through an azure-core
``PipelineClient`` with the provider's credential (``BearerTokenCredentialPolicy``) and azure-core's
``RetryPolicy``, the same stack azure-ai-ml uses. ``deploy`` registers the model, creates the endpoint
and its ``blue`` deployment, waits until it serves, creates its Azure Monitor autoscale setting when
``max_replicas > min_replicas`` (:mod:`cloudbridge_azure.autoscale`) and sends it all traffic; if any
step fails, everything created so far is deleted again and the error says so. ``delete`` removes the
autoscale setting, the deployment, the endpoint and the registered model, also after a half-failed
deploy (an absent piece is skipped).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from cloudbridge.errors import CloudbridgeError, ConflictError, NotFound, ProviderError, StageTimeout, UserError
from cloudbridge.interfaces import Deploy
from cloudbridge.records import Endpoint
from cloudbridge.specs import EndpointSpec
from cloudbridge_azure.autoscale import Autoscale, capacity_of, setting_name, wants_autoscale
from cloudbridge_azure.deploy_request import (
    DEPLOYMENT,
    check_name,
    check_replicas,
    deployment_body,
    endpoint_body,
    model_body,
    model_name,
)
from cloudbridge_azure.errors import azure_errors
from cloudbridge_azure.job_request import workspace_id

if TYPE_CHECKING:
    from cloudbridge_azure.provider import AzureProvider

__all__ = ["API_VERSION", "AzureMLDeploy"]

API_VERSION = "2024-04-01"
_STATES = {"Succeeded": "InService", "Creating": "Creating", "Updating": "Updating", "Deleting": "Deleting",
           "Failed": "Failed", "Canceled": "Failed"}


class AzureMLDeploy(Deploy):
    """:class:`~cloudbridge.interfaces.Deploy` on Azure ML managed online endpoints."""

    def __init__(self, provider: AzureProvider) -> None:
        self.provider = provider
        self.settings = provider.settings
        self._pipeline: Any = None
        self.autoscale = Autoscale(provider)

    # ---- HTTP --------------------------------------------------------------------------------------
    @property
    def base(self) -> str:
        """The ARM endpoint (``arm_endpoint`` or ``https://management.azure.com``)."""
        return (self.settings.arm_endpoint or "https://management.azure.com").rstrip("/")

    def _client(self) -> Any:
        if self._pipeline is None:
            from azure.core import PipelineClient
            from azure.core.pipeline.policies import BearerTokenCredentialPolicy, RetryPolicy

            policies = [RetryPolicy(retry_total=self.settings.retry_total, retry_backoff_factor=0.8),
                        BearerTokenCredentialPolicy(self.provider.clients.credential, f"{self.base}/.default")]
            self._pipeline = PipelineClient(self.base, policies=policies)
        return self._pipeline

    def _call(self, method: str, path: str, body: Any = None, *, action: str, resource: str,
              client: Any = None, url: str | None = None) -> Any:
        from azure.core.exceptions import HttpResponseError, map_error
        from azure.core.rest import HttpRequest

        target = url or f"{self.base}{workspace_id(self.settings)}{path}?api-version={API_VERSION}"
        request = HttpRequest(method, target, json=body) if body is not None else HttpRequest(method, target)
        with azure_errors(action, resource=resource):
            response = (client or self._client()).send_request(request)
            if response.status_code >= 400:
                map_error(response.status_code, response, {})
                raise HttpResponseError(response=response)
            text = response.text()
        return json.loads(text) if text.strip() else None

    def _endpoint(self, name: str) -> dict[str, Any]:
        try:
            return self._call("GET", f"/onlineEndpoints/{name}", action="read the online endpoint", resource=name)
        except NotFound as exc:
            raise NotFound(f"no Azure ML endpoint {name!r} in workspace {self.settings.workspace}") from exc.__cause__

    def _deployment(self, name: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", f"/onlineEndpoints/{name}/deployments/{DEPLOYMENT}",
                              action="read the deployment", resource=name)
        except NotFound:
            return None

    def _record(self, raw: dict[str, Any], deployment: dict[str, Any] | None) -> Endpoint:
        props = raw.get("properties") or {}
        state = props.get("provisioningState") or "Creating"
        dprops = (deployment or {}).get("properties") or {}
        if deployment is not None and state == "Succeeded":
            state = dprops.get("provisioningState") or "Creating"
        instances = ((deployment or {}).get("sku") or {}).get("capacity")
        capacity = capacity_of(self.autoscale.get(raw.get("name") or "")) if deployment is not None else None
        low, high = (capacity["minimum"], capacity["maximum"]) if capacity else (instances, instances)
        return Endpoint(
            name=raw.get("name") or "", provider="azure", state=_STATES.get(state, state), url=props.get("scoringUri"),
            model=dprops.get("model"), native_id=raw.get("id"),
            extra={"instance_type": dprops.get("instanceType"), "instances": instances, "min_replicas": low,
                   "max_replicas": high, "autoscale": setting_name(raw.get("name") or "") if capacity else None,
                   "traffic": props.get("traffic") or {}, "azureml_state": state},
        )

    # ---- Deploy ------------------------------------------------------------------------------------
    def _model_uri(self, spec: EndpointSpec) -> str:
        uri = spec.model.rstrip("/")
        if not uri.startswith("az://"):
            raise UserError(f"model {spec.model!r}: Azure ML endpoints serve a model folder in Blob storage "
                            "(az://ACCOUNT/CONTAINER/PATH)", hint="upload it: cloudbridge storage sync DIR az://...")
        if not any(True for _ in self.provider.storage.list(uri)):
            raise NotFound(f"model {spec.model!r}: no model files there")
        return uri

    def deploy(self, spec: EndpointSpec) -> Endpoint:
        """Register the model, create endpoint + deployment, wait until it serves, route all traffic."""
        check_name(spec)
        check_replicas(spec, self.settings)  # bad replica bounds: refused before any call
        uri = self._model_uri(spec)
        body = deployment_body(spec, self.settings, "pending")  # bad input before anything exists
        try:
            self._endpoint(spec.name)
        except NotFound:
            pass
        else:
            raise ConflictError(f"Azure ML endpoint {spec.name!r} already exists",
                                hint=f"cloudbridge undeploy {spec.name} first, or pick another name")
        name = spec.name
        try:
            model = self._call("PUT", f"/models/{model_name(spec)}/versions/1", model_body(uri, self.settings),
                               action="register the model", resource=uri)
            self._call("PUT", f"/onlineEndpoints/{name}", endpoint_body(spec, self.settings),
                       action="create the online endpoint", resource=name)
            body["properties"]["model"] = model["id"]
            self._call("PUT", f"/onlineEndpoints/{name}/deployments/{DEPLOYMENT}", body,
                       action="create the deployment", resource=name)
            self._wait(name)
            if wants_autoscale(spec):  # the endpoint takes traffic only once it can scale
                self.autoscale.create(spec, (self._deployment(name) or {}).get("id") or "")
            endpoint = self._endpoint(name)
            endpoint["properties"]["traffic"] = {DEPLOYMENT: 100}
            self._call("PUT", f"/onlineEndpoints/{name}", endpoint, action="route traffic", resource=name)
        except CloudbridgeError as exc:
            cleanup = self._cleanup(spec)
            exc.message = f"{exc.message}; {cleanup}"
            exc.args = (str(exc),)
            raise
        return self.get(name)

    def _wait(self, name: str) -> None:
        deadline = time.monotonic() + self.settings.deploy_timeout
        while True:
            deployment = self._deployment(name) or {}
            props = deployment.get("properties") or {}
            state = props.get("provisioningState")
            if state == "Succeeded":
                return
            if state in ("Failed", "Canceled"):
                raise ProviderError(f"Azure ML deployment {name}/{DEPLOYMENT} {state}: "
                                    f"{props.get('description') or 'no reason given'}", provider="azure")
            if time.monotonic() > deadline:
                raise StageTimeout(f"deployment {name}/{DEPLOYMENT} not ready after {self.settings.deploy_timeout}s",
                                   stage="deploy")
            time.sleep(min(self.settings.poll_interval, 2.0))

    def _cleanup(self, spec: EndpointSpec) -> str:
        try:
            self._delete_all(spec.name, model_name(spec))
        except CloudbridgeError as exc:
            return f"cleaning up failed ({exc}): run cloudbridge undeploy {spec.name}"
        return "everything created for it was deleted"

    def get(self, name: str) -> Endpoint:
        """The endpoint and its deployment's state (``InService`` once it serves)."""
        return self._record(self._endpoint(name), self._deployment(name))

    def list(self) -> list[Endpoint]:
        """cloudbridge's endpoints in the workspace."""
        found = self._call("GET", "/onlineEndpoints", action="list online endpoints", resource="onlineEndpoints")
        return [self._record(raw, self._deployment(raw["name"])) for raw in (found or {}).get("value", [])
                if "cloudbridge:endpoint" in (raw.get("tags") or {})]

    def invoke(self, name: str, payload: Any) -> Any:
        """POST ``payload`` to the scoring URI with the endpoint key; the decoded JSON reply."""
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import HeadersPolicy, RetryPolicy

        raw = self._endpoint(name)
        scoring = (raw.get("properties") or {}).get("scoringUri")
        if not scoring:
            raise ProviderError(f"endpoint {name} has no scoring URI yet", provider="azure")
        keys = self._call("POST", f"/onlineEndpoints/{name}/listKeys", {}, action="read the endpoint key",
                          resource=name)
        client = PipelineClient(scoring, policies=[
            RetryPolicy(retry_total=self.settings.retry_total),
            HeadersPolicy({"Authorization": f"Bearer {keys['primaryKey']}",
                           "azureml-model-deployment": DEPLOYMENT})])
        try:
            return self._call("POST", "", payload, action="invoke the endpoint", resource=name, client=client,
                              url=scoring)
        except CloudbridgeError as exc:
            if isinstance(exc, (NotFound, UserError)) or getattr(exc.__cause__, "status_code", 0) in range(400, 500):
                raise UserError(f"endpoint {name} refused the request: {exc.message}") from exc.__cause__
            raise

    def delete(self, name: str) -> None:
        """Delete the autoscale setting, the deployment, the endpoint and the registered model.

        Also after a half-failed deploy; a setting left behind by an endpoint deleted elsewhere is
        deleted too (Azure keeps such orphans).
        """
        try:
            self._endpoint(name)
        except NotFound:
            if self.autoscale.get(name) is None:
                raise
            self.autoscale.delete(name)
            return
        self._delete_all(name, f"cb-{name}")

    def _delete_all(self, name: str, model: str) -> None:
        self.autoscale.delete(name)  # first: Azure keeps a setting whose deployment is gone
        for path, what in ((f"/onlineEndpoints/{name}/deployments/{DEPLOYMENT}", "delete the deployment"),
                           (f"/onlineEndpoints/{name}", "delete the online endpoint"),
                           (f"/models/{model}/versions/1", "delete the registered model")):
            try:
                self._call("DELETE", path, action=what, resource=name)
            except NotFound:
                continue
