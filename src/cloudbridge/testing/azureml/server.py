"""``AzureMLFake``: an Azure ML REST fake over HTTPS on 127.0.0.1 that really runs the jobs it gets.

It speaks the ARM paths the ``azure-ai-ml`` SDK calls (recorded in ``shared/CLOUD-FAKES.md``) under
``/subscriptions/S/resourceGroups/R/providers/Microsoft.MachineLearningServices/workspaces/W``:

* the workspace, ``computes/NAME`` (AmlCompute clusters with a maximum node count) and
  ``datastores/NAME`` (the default blob and artifact stores, both in Azurite);
* the code-upload handshake: ``GET codes/N/versions?hash=``, ``POST codes/N/versions/V/startPendingUpload``
  (answered with a SAS URI into Azurite), ``PUT``/``GET codes/N/versions/V``;
* ``PUT``/``GET jobs/NAME``, ``GET jobs``, ``POST jobs/NAME/cancel`` (202 + ``Location`` to poll);
  a job really runs (:class:`~cloudbridge.testing.azureml.runner.JobRun`) and moves through
  Queued, Starting, Running and Completed, or Failed / Canceled;
* run history ``/history/v1.0/.../runs/NAME/details`` with the status and Azure's error shape;
* online endpoints and deployments (:mod:`cloudbridge.testing.azureml.endpoints`).

Every request but the anonymous discovery document must carry ``Authorization: Bearer <the loopback
test token>`` (else 401). Faults are
injected with :meth:`AzureMLFake.inject`: ``"auth"`` (403 AuthorizationFailed), ``"quota"`` (the
next job or deployment is refused with QuotaExceeded), ``"throttle"`` (429 with ``Retry-After: 0``),
``"server"`` (500), each optionally only for requests whose ``"METHOD /path"`` matches a regex
(``path=``) and after letting the first ``skip`` of them through; :meth:`AzureMLFake.preempt`
preempts a running low-priority job. Azure Monitor autoscale settings of the resource group are
served too (:mod:`cloudbridge.testing.azureml.autoscale`).
"""

from __future__ import annotations

import itertools
import re
import tempfile
import threading
import time
import uuid
from collections import Counter
from typing import Any

from cloudbridge.testing.azureml.blobs import ARTIFACT_CONTAINER, BLOB_CONTAINER, Blobs
from cloudbridge.testing.azureml.certs import self_signed_cert
from cloudbridge.testing.azureml.http import ApiError, HttpsServer, Reply, Request, Router
from cloudbridge.testing.azureml.runner import JobRun

__all__ = ["AzureMLFake", "TEST_TOKEN"]

TEST_TOKEN = "cloudbridge-loopback-test-token"
WS = (r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
      r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)")
_TERMINAL = ("Completed", "Failed", "Canceled")
_counter = itertools.count(1)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())


class AzureMLFake:
    """An Azure ML workspace on this machine; storage is an Azurite server (``azurite`` argument)."""

    def __init__(self, azurite: Any, *, subscription: str, resource_group: str = "rg", workspace: str = "cb-ws",
                 region: str = "eastus", computes: dict[str, dict[str, Any]] | None = None,
                 queue_seconds: float = 0.3) -> None:
        from cloudbridge.testing.azurite import ACCOUNT, ACCOUNT_KEY

        self.subscription, self.resource_group, self.workspace, self.region = (
            subscription, resource_group, workspace, region)
        self.computes = computes if computes is not None else {
            "cpu-cluster": {"vmSize": "Standard_D4s_v3", "maxNodeCount": 4}}
        self.queue_seconds = queue_seconds
        self.root = tempfile.mkdtemp(prefix="cb-azureml-fake-")
        self.blobs = Blobs(azurite.connection_string, azurite.blob_endpoint, ACCOUNT, ACCOUNT_KEY)
        self.account = ACCOUNT
        self.jobs: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, JobRun] = {}
        self.codes: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.faults: Counter[str] = Counter()
        self.fault_rules: dict[str, tuple[re.Pattern[str] | None, int]] = {}  # fault -> (path regex, skip)
        #: New jobs stay Queued and run nothing; a driver moves them (see ``driver.py``).
        self.hold_jobs = False
        self.auth_failures = 0
        self.lock = threading.RLock()
        self.cloud_name = f"cloudbridge-fake-{uuid.uuid4().hex[:8]}"
        self.cert, self.key = self_signed_cert(self.root)
        self.router = Router()
        self._routes()
        from cloudbridge.testing.azureml.autoscale import AutoscaleSettings
        from cloudbridge.testing.azureml.endpoints import Endpoints

        self.endpoints = Endpoints(self)
        self.endpoints.routes(self.router)
        self.autoscale = AutoscaleSettings(self)
        self.autoscale.routes(self.router)
        self.http = HttpsServer(self._dispatch, (self.cert, self.key))

    # ---- public helpers --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``: the ``arm_endpoint`` setting."""
        return self.http.url

    @property
    def workspace_id(self) -> str:
        """The workspace's ARM id."""
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/"
                f"Microsoft.MachineLearningServices/workspaces/{self.workspace}")

    def settings(self) -> dict[str, Any]:
        """``AzureSettings`` values that point a provider at this fake (and its Azurite)."""
        return {"subscription_id": self.subscription, "resource_group": self.resource_group,
                "workspace": self.workspace, "region": self.region, "arm_endpoint": self.url,
                "storage_account": self.account, "container": BLOB_CONTAINER,
                "blob_endpoint": self.blobs.endpoint, "compute": next(iter(self.computes), "serverless")}

    def env(self) -> dict[str, str]:
        """``REQUESTS_CA_BUNDLE`` (trust the self-signed certificate) for clients of this fake."""
        return {"REQUESTS_CA_BUNDLE": self.cert}

    def inject(self, fault: str, times: int = 1, *, path: str | None = None, skip: int = 0) -> None:
        """Arm ``fault`` (``auth``, ``quota``, ``throttle``, ``server``) for the next ``times`` requests it fits
        (with ``path``: those whose ``"METHOD /path"`` matches that regex), after letting ``skip`` through."""
        if fault not in ("auth", "quota", "throttle", "server"):
            raise ValueError(f"unknown fault {fault!r}")
        with self.lock:
            self.faults[fault] += times
            self.fault_rules[fault] = (re.compile(path) if path else None, skip)

    def preempt(self, name: str) -> None:
        """Preempt the low-priority node(s) of job ``name``: its processes die and it ends Failed."""
        self.runs[name].preempt()

    def stop(self) -> None:
        """Stop serving, kill every job process and server, remove the temporary files."""
        import shutil

        self.http.stop()
        for run in list(self.runs.values()):
            run.stop_now()
        self.endpoints.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # ---- dispatch --------------------------------------------------------------------------------
    def _take(self, fault: str, where: str = "") -> bool:
        """Consume one armed ``fault`` if it fits ``where`` (``"METHOD /path"``)."""
        with self.lock:
            if self.faults[fault] <= 0:
                return False
            pattern, skip = self.fault_rules.get(fault, (None, 0))
            if pattern is not None and not pattern.search(where):
                return False
            if skip > 0:
                self.fault_rules[fault] = (pattern, skip - 1)
                return False
            self.faults[fault] -= 1
            return True

    def _dispatch(self, method: str, raw_path: str, headers: Any, body: bytes) -> Reply:
        path = raw_path.split("?", 1)[0]
        self.requests.append((method, path))
        try:
            if path.startswith("/score/"):
                return self.endpoints.score(method, path, headers, body)
            anonymous = path.startswith("/discovery/")  # Azure's discovery documents need no token
            if not anonymous and headers.get("Authorization") != f"Bearer {TEST_TOKEN}":
                self.auth_failures += 1
                raise ApiError(401, "InvalidAuthenticationToken", "The access token is missing or invalid.",
                               {"WWW-Authenticate": 'Bearer authorization_uri="https://login.invalid"'})
            where = f"{method} {path}"
            if self._take("auth", where):
                raise ApiError(403, "AuthorizationFailed", "The client does not have authorization to perform "
                               f"action over scope '{path}'.")
            if self._take("throttle", where):
                raise ApiError(429, "TooManyRequests", "Too many requests.", {"Retry-After": "0"})
            if self._take("server", where):
                raise ApiError(500, "InternalServerError", "The server had an error.")
            found = self.router.find(method, path)
            if found is None:
                raise ApiError(404, "NotFound", f"The fake has no route for {method} {path}")
            handler, groups = found
            request = Request(method, raw_path, headers, body, groups)
            self._check_workspace(groups)
            return handler(request)
        except ApiError as exc:
            return Reply(exc.status, exc.body(), exc.headers)

    def _check_workspace(self, groups: dict[str, str]) -> None:
        if "ws" not in groups:
            return
        if groups["sub"] != self.subscription or groups["rg"].lower() != self.resource_group.lower():
            raise ApiError(404, "ResourceGroupNotFound", f"Resource group '{groups['rg']}' could not be found.")
        if groups["ws"].lower() != self.workspace.lower():
            raise ApiError(404, "ResourceNotFound", f"The Resource 'Microsoft.MachineLearningServices/workspaces/"
                           f"{groups['ws']}' under resource group '{groups['rg']}' was not found.")

    # ---- routes ----------------------------------------------------------------------------------
    def _routes(self) -> None:
        r = self.router
        r.add("GET", WS, self._get_workspace)
        r.add("GET", WS + r"/computes/(?P<name>[^/]+)", self._get_compute)
        r.add("GET", WS + r"/datastores/(?P<name>[^/]+)", self._get_datastore)
        r.add("POST", WS + r"/datastores/(?P<name>[^/]+)/listSecrets", self._datastore_secrets)
        r.add("GET", WS + r"/codes/(?P<name>[^/]+)/versions", self._list_code_versions)
        r.add("POST", WS + r"/codes/(?P<name>[^/]+)/versions/(?P<version>[^/]+)/startPendingUpload",
              self._start_pending_upload)
        r.add("PUT", WS + r"/codes/(?P<name>[^/]+)/versions/(?P<version>[^/]+)", self._put_code)
        r.add("GET", WS + r"/codes/(?P<name>[^/]+)/versions/(?P<version>[^/]+)", self._get_code)
        r.add("GET", WS + r"/jobs", self._list_jobs)
        r.add("PUT", WS + r"/jobs/(?P<name>[^/]+)", self._put_job)
        r.add("GET", WS + r"/jobs/(?P<name>[^/]+)", self._get_job)
        r.add("POST", WS + r"/jobs/(?P<name>[^/]+)/cancel", self._cancel_job)
        r.add("GET", r"/fake-operations/(?P<op>[^/]+)", self._get_operation)
        r.add("GET", r"/history/v1\.0" + WS + r"/runs/(?P<name>[^/]+)/details", self._run_details)
        r.add("GET", r"/history/v1\.0" + WS + r"/experimentids/[^/]+/runs/(?P<name>[^/]+)/details", self._run_details)
        r.add("GET", r"/discovery/workspaces/(?P<wsid>[^/]+)", self._discovery)

    def _get_workspace(self, request: Request) -> Reply:
        return Reply(200, {
            "id": self.workspace_id, "name": self.workspace, "location": self.region,
            "type": "Microsoft.MachineLearningServices/workspaces", "kind": "Default",
            "properties": {
                "friendlyName": self.workspace, "provisioningState": "Succeeded",
                "storageAccount": f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/"
                                  f"providers/Microsoft.Storage/storageAccounts/{self.account}",
                "discoveryUrl": f"{self.url}/discovery/workspaces/{self.workspace}",
                "workspaceId": str(uuid.uuid5(uuid.NAMESPACE_URL, self.workspace_id)),
            },
        })

    def _discovery(self, request: Request) -> Reply:
        return Reply(200, {"api": self.url, "catalog": self.url, "experimentation": self.url, "history": self.url,
                           "modelmanagement": self.url, "pipelines": self.url, "studio": self.url})

    def _get_compute(self, request: Request) -> Reply:
        name = request.groups["name"]
        compute = self.computes.get(name)
        if compute is None:
            raise ApiError(404, "ResourceNotFound", f"Compute '{name}' was not found in workspace {self.workspace}.")
        return Reply(200, {
            "id": f"{self.workspace_id}/computes/{name}", "name": name, "location": self.region,
            "type": "Microsoft.MachineLearningServices/workspaces/computes",
            "properties": {"computeType": "AmlCompute", "provisioningState": "Succeeded", "properties": {
                "vmSize": compute.get("vmSize", "Standard_D4s_v3"),
                "vmPriority": compute.get("vmPriority", "Dedicated"),
                "scaleSettings": {"maxNodeCount": compute.get("maxNodeCount", 4), "minNodeCount": 0,
                                  "nodeIdleTimeBeforeScaleDown": "PT120S"}}},
        })

    def _get_datastore(self, request: Request) -> Reply:
        name = request.groups["name"]
        containers = {"workspaceblobstore": BLOB_CONTAINER, "workspaceartifactstore": ARTIFACT_CONTAINER}
        if name not in containers:
            raise ApiError(404, "UserError", f"Datastore {name} was not found.")
        return Reply(200, {
            "id": f"{self.workspace_id}/datastores/{name}", "name": name,
            "properties": {"datastoreType": "AzureBlob", "accountName": self.account,
                           "containerName": containers[name], "endpoint": "core.windows.net", "protocol": "https",
                           "isDefault": name == "workspaceblobstore",
                           "credentials": {"credentialsType": "AccountKey"}},
        })

    def _datastore_secrets(self, request: Request) -> Reply:
        from cloudbridge.testing.azurite import ACCOUNT_KEY

        return Reply(200, {"secretsType": "AccountKey", "key": ACCOUNT_KEY})

    # ---- code assets -----------------------------------------------------------------------------
    def _code_body(self, name: str, version: str, props: dict[str, Any]) -> dict[str, Any]:
        return {"id": f"{self.workspace_id}/codes/{name}/versions/{version}", "name": version,
                "type": "Microsoft.MachineLearningServices/workspaces/codes/versions",
                "properties": props, "systemData": {"createdAt": _now()}}

    def _list_code_versions(self, request: Request) -> Reply:
        name, wanted = request.groups["name"], request.query.get("hash")
        with self.lock:
            found = [self._code_body(n, v, p) for (n, v), p in self.codes.items()
                     if n == name and (wanted is None or p.get("contentHash") == wanted)]
        return Reply(200, {"value": found})

    def _start_pending_upload(self, request: Request) -> Reply:
        path = f"LocalUpload/{uuid.uuid4().hex}"
        sas = self.blobs.sas_url(BLOB_CONTAINER, path)
        return Reply(200, {"blobReferenceForConsumption": {
            "blobUri": self.blobs.url(BLOB_CONTAINER, path),
            "storageAccountArmId": f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/"
                                   f"providers/Microsoft.Storage/storageAccounts/{self.account}",
            "credential": {"credentialType": "SAS", "sasUri": sas}}})

    def _put_code(self, request: Request) -> Reply:
        name, version = request.groups["name"], request.groups["version"]
        props = dict(request.json().get("properties") or {})
        props.setdefault("provisioningState", "Succeeded")
        with self.lock:
            self.codes[(name, version)] = props
        return Reply(201, self._code_body(name, version, props))

    def _get_code(self, request: Request) -> Reply:
        key = (request.groups["name"], request.groups["version"])
        with self.lock:
            props = self.codes.get(key)
        if props is None:
            raise ApiError(404, "UserError", f"Code {key[0]}:{key[1]} was not found.")
        return Reply(200, self._code_body(*key, props))

    # ---- jobs ------------------------------------------------------------------------------------
    def _job_body(self, name: str) -> dict[str, Any]:
        record = self.jobs[name]
        props = dict(record["properties"])
        run = self.runs.get(name)
        props["status"] = run.status if run else "NotStarted"
        props.setdefault("services", {"Studio": {"jobServiceType": "Studio",
                                                 "endpoint": f"{self.url}/studio/jobs/{name}"}})
        created = time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime(record["created"]))
        return {"id": f"{self.workspace_id}/jobs/{name}", "name": name,
                "type": "Microsoft.MachineLearningServices/workspaces/jobs", "properties": props,
                "systemData": {"createdAt": created, "createdBy": "cloudbridge-test"}}

    def _put_job(self, request: Request) -> Reply:
        from cloudbridge.testing.azureml.validate import validate_job

        name = request.groups["name"]
        props = dict(request.json().get("properties") or {})
        with self.lock:
            if name in self.jobs:
                return self._update_job(name, props)
        validate_job(self, name, props)
        if self._take("quota", f"PUT {request.path}"):
            size = (props.get("resources") or {}).get("instanceType") or "the requested VM size"
            raise ApiError(400, "QuotaExceeded", f"Operation could not be completed as it results in exceeding "
                           f"approved quota for {size}: requested cores exceed the subscription's quota.")
        code_prefix = None
        if props.get("codeId"):
            code = self._code_for(props["codeId"])
            code_prefix = code.get("codeUri")
        with self.lock:
            self.jobs[name] = {"properties": props, "created": time.time()}
            run = JobRun(name, props, code_prefix, self.blobs, self.root, queue_seconds=self.queue_seconds)
            self.runs[name] = run
        run.start(hold=self.hold_jobs)
        return Reply(201, self._job_body(name))

    def _update_job(self, name: str, props: dict[str, Any]) -> Reply:
        """A PUT on an existing job may change its tags, description and properties only (as Azure ML)."""
        mutable = ("tags", "description", "properties", "status", "services")
        old = self.jobs[name]["properties"]
        if {k: v for k, v in props.items() if k not in mutable} != {k: v for k, v in old.items() if k not in mutable}:
            raise ApiError(400, "UserError", f"A job with this name already exists: {name}")
        old["tags"] = dict(props.get("tags") or {})
        return Reply(200, self._job_body(name))

    def _code_for(self, code_id: str) -> dict[str, Any]:
        parts = code_id.rstrip("/").split("/")
        try:
            key = (parts[parts.index("codes") + 1], parts[parts.index("versions") + 1])
        except (ValueError, IndexError):
            raise ApiError(400, "UserError", f"codeId {code_id!r} is not a code version id") from None
        with self.lock:
            code = self.codes.get(key)
        if code is None:
            raise ApiError(404, "UserError", f"Code {key[0]}:{key[1]} was not found.")
        return code

    def _get_job(self, request: Request) -> Reply:
        name = request.groups["name"]
        with self.lock:
            if name not in self.jobs:
                raise ApiError(404, "UserError", f"The specified resource name {name} was not found.")
            return Reply(200, self._job_body(name))

    def _list_jobs(self, request: Request) -> Reply:
        with self.lock:
            bodies = [self._job_body(name) for name in self.jobs]
        if request.query.get("listViewType", "ActiveOnly") == "ActiveOnly":
            bodies = [b for b in bodies if not b["properties"].get("isArchived")]
        return Reply(200, {"value": bodies[::-1], "nextLink": None})

    def _cancel_job(self, request: Request) -> Reply:
        name = request.groups["name"]
        with self.lock:
            run = self.runs.get(name)
        if run is None:
            raise ApiError(404, "UserError", f"The specified resource name {name} was not found.")
        if run.status in _TERMINAL:
            raise ApiError(400, "UserError", f"Cannot cancel job {name} in terminal state {run.status}.")
        run.cancel()
        op = f"{next(_counter)}-{name}"
        return Reply(202, None, {"Location": f"{self.url}/fake-operations/{op}", "Retry-After": "0"})

    def _get_operation(self, request: Request) -> Reply:
        name = request.groups["op"].split("-", 1)[1]
        run = self.runs.get(name)
        if run is not None and run.status not in _TERMINAL:
            return Reply(202, None, {"Location": f"{self.url}/fake-operations/{request.groups['op']}",
                                     "Retry-After": "0"})
        return Reply(200, {})

    def _run_details(self, request: Request) -> Reply:
        name = request.groups["name"]
        run = self.runs.get(name)
        if run is None:
            raise ApiError(404, "RunNotFound", f"Run {name} was not found.")
        details: dict[str, Any] = {"runId": name, "status": run.status, "target": self.jobs[name]["properties"].get(
            "computeId", "serverless").rsplit("/", 1)[-1], "logFiles": {
            f"user_logs/std_log_process_{i}.txt": "" for i in range(len(run.log_files))}}
        if run.started_at:
            details["startTimeUtc"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(run.started_at))
        if run.ended_at:
            details["endTimeUtc"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(run.ended_at))
        if run.error:
            details["error"] = {"error": {**run.error, "details": [], "innerError": None}}
        return Reply(200, details)
