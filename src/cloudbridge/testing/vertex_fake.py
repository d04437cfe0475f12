"""A Vertex AI REST fake that really runs jobs and serves models, for test sessions.

It speaks the wire format the ``google-cloud-aiplatform`` REST transport uses (recorded in
``shared/CLOUD-FAKES.md``): ``/v1/projects/P/locations/L/...`` paths, ``?$alt=json;enum-encoding=int``,
int-encoded enums in requests (string enums in replies, as Vertex sends them), int64 as strings, and
long-running operations polled at ``/ui/<operation name>``. Point the SDK at it with
``client_options={"api_endpoint": fake.endpoint}``, ``transport="rest"`` and anonymous credentials.

==========================================  ========================================================
call                                        what the fake does
==========================================  ========================================================
``customJobs`` create / get / list /        stores the job and **runs it**
cancel / delete                             (:class:`~cloudbridge.testing.vertex_runner.JobRun`):
                                            each worker pool replica a local process with Vertex's
                                            environment, ``/gcs`` staged from the GCS emulator
``models:upload`` / get / delete            stores the model (``artifactUri`` on the GCS emulator)
``endpoints`` create / get / list / delete  stores the endpoint (delete refuses one with models)
``:deployModel`` / ``:undeployModel``       downloads the artifact and starts the real
                                            ``python -m cloudbridge.serving.serve`` on a free port
                                            with ``AIP_*`` serving variables / stops it
``:predict``                                forwards ``{"instances": [...]}`` to the server's
                                            predict route, answers ``{"predictions", "deployedModelId"}``
Cloud Logging ``POST /v2/entries:list``     the lines the job's replicas printed, filtered by
                                            ``resource.labels.job_id``
==========================================  ========================================================

Faults (:meth:`VertexFake.inject`): ``"quota"`` answers the next matching call with 429
RESOURCE_EXHAUSTED, ``"permission"`` with 403 PERMISSION_DENIED, ``"api_disabled"`` with the 403 of a
project whose Vertex AI API is off, ``"unavailable"`` with 503, and ``"preempt"`` makes the next
spot job's last worker be preempted after ``after`` seconds of running (the job then fails as Vertex
reports a reclaimed Spot VM). With :attr:`VertexFake.hold` set, new jobs are stored but not run, so a test
can move them between states itself (``fake.jobs[id]``), as the managed-jobs conformance suite does.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cloudbridge.testing.vertex_runner import JobRun, LogEntry

__all__ = ["VertexFake", "rfc3339", "vertex_fake"]

_ERROR_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS",
                 429: "RESOURCE_EXHAUSTED", 412: "FAILED_PRECONDITION", 503: "UNAVAILABLE"}
_V1 = "google.cloud.aiplatform.v1."
#: Long-running operation kinds -> (metadata message, response message), as Vertex AI types them.
_OPERATION_TYPES = {
    "UploadModel": (_V1 + "UploadModelOperationMetadata", _V1 + "UploadModelResponse"),
    "CreateEndpoint": (_V1 + "CreateEndpointOperationMetadata", _V1 + "Endpoint"),
    "DeployModel": (_V1 + "DeployModelOperationMetadata", _V1 + "DeployModelResponse"),
    "UndeployModel": (_V1 + "UndeployModelOperationMetadata", _V1 + "UndeployModelResponse"),
    "Delete": (_V1 + "DeleteOperationMetadata", "google.protobuf.Empty"),
}
_PARENT = r"/v1/(?P<parent>projects/[^/]+/locations/[^/]+)"


def rfc3339(epoch: float) -> str:
    """``2026-01-01T12:00:00.123456Z``: a timestamp as Vertex writes it."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeError(Exception):
    """An error answer: HTTP ``status`` with Google's error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Fault:
    """An injected fault: ``kind`` on calls whose ``METHOD path`` matches ``pattern``, ``times`` times."""

    kind: str
    pattern: str = ".*"
    times: int = 1
    after: float = 0.5


@dataclass
class VertexFake:
    """The fake's state; every handler thread works on it under :attr:`lock`."""

    start_delay: float = 0.2
    #: When True, new jobs are stored but not run: a test moves them between states itself.
    hold: bool = False
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, JobRun] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: list[LogEntry] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    endpoint: str = ""
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1000))
    serving: Any = None

    def inject(self, kind: str, pattern: str = ".*", *, times: int = 1, after: float = 0.5) -> None:
        """Make the next ``times`` calls matching ``pattern`` (``"POST .../customJobs"``) fail with ``kind``.

        ``kind``: ``"quota"`` (429 RESOURCE_EXHAUSTED), ``"permission"`` (403 PERMISSION_DENIED),
        ``"api_disabled"`` (403 SERVICE_DISABLED), ``"unavailable"`` (503) or ``"preempt"`` (the next spot
        job's last worker is preempted after ``after`` seconds of running).
        """
        with self.lock:
            self.faults.append(Fault(kind, pattern, times, after))

    def next_id(self) -> str:
        """A fresh numeric resource id, as Vertex assigns them."""
        return str(next(self._ids)) + str(int(time.time() * 1000) % 100000)

    def _take_fault(self, call: str, kinds: tuple[str, ...]) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.kind in kinds and fault.times > 0 and re.search(fault.pattern, call):
                    fault.times -= 1
                    return fault
        return None

    # ---- operations ----------------------------------------------------------------------------
    def operation(self, parent: str, kind: str, response: dict[str, Any] | None = None,
                  error: dict[str, Any] | None = None) -> dict[str, Any]:
        """A long-running operation, already done (its response or error is final)."""
        name = f"{parent}/operations/{self.next_id()}"
        meta, answer = _OPERATION_TYPES[kind]
        op: dict[str, Any] = {"name": name, "done": True,
                              "metadata": {"@type": f"type.googleapis.com/{meta}",
                                           "genericMetadata": {"createTime": rfc3339(time.time())}}}
        if error is not None:
            op["error"] = error
        else:
            op["response"] = {"@type": f"type.googleapis.com/{answer}", **(response or {})}
        with self.lock:
            self.operations[name] = op
        return {"name": name, "done": False, "metadata": op["metadata"]}

    # ---- custom jobs ---------------------------------------------------------------------------
    def create_job(self, parent: str, body: dict[str, Any]) -> dict[str, Any]:
        """Store and start a CustomJob."""
        if not body.get("displayName") or len(body["displayName"]) > 128:
            raise FakeError(400, "CustomJob.display_name must be 1 to 128 characters.")
        pools = body.get("jobSpec", {}).get("workerPoolSpecs") or []
        if not pools or not pools[0].get("containerSpec", {}).get("imageUri"):
            raise FakeError(400, "CustomJob.job_spec.worker_pool_specs[0].container_spec.image_uri is required.")
        job_id = self.next_id()
        now = rfc3339(time.time())
        job = {**body, "name": f"{parent}/customJobs/{job_id}", "state": "JOB_STATE_QUEUED", "createTime": now,
               "updateTime": now}
        strategy = body.get("jobSpec", {}).get("scheduling", {}).get("strategy")
        preempt = self._take_fault("spot", ("preempt",)) if strategy in (4, "SPOT") else None
        run = JobRun(job, job_id, self.logs, self.lock, start_delay=self.start_delay,
                     preempt_after=preempt.after if preempt else None)
        with self.lock:
            self.jobs[job_id] = job
            self.runs[job_id] = run
        if not self.hold:
            run.start()
        return self.job_view(job_id)

    def job_view(self, job_id: str) -> dict[str, Any]:
        """A copy of the stored job (what ``GET`` answers)."""
        with self.lock:
            if job_id not in self.jobs:
                raise FakeError(404, f"The CustomJob does not exist: {job_id}")
            return json.loads(json.dumps(self.jobs[job_id]))

    def list_jobs(self, parent: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """``customJobs.list`` with ``filter`` (``display_name="X"``, ``labels.K="V"``) and paging."""
        expr = (query.get("filter") or [""])[0]
        wanted = re.findall(r'(display_name|labels\.[a-z0-9_-]+)\s*=\s*"([^"]*)"', expr)
        with self.lock:
            ids = sorted(self.jobs, key=lambda i: self.jobs[i]["createTime"], reverse=True)
        jobs = []
        for job_id in ids:
            job = self.job_view(job_id)
            if not job["name"].startswith(parent + "/"):
                continue
            values = {"display_name": job.get("displayName", ""),
                      **{f"labels.{k}": v for k, v in (job.get("labels") or {}).items()}}
            if all(values.get(key) == value for key, value in wanted):
                jobs.append(job)
        size = int((query.get("pageSize") or ["100"])[0] or 100) or 100
        start = int((query.get("pageToken") or ["0"])[0] or 0)
        page = jobs[start:start + size]
        answer: dict[str, Any] = {"customJobs": page}
        if start + size < len(jobs):
            answer["nextPageToken"] = str(start + size)
        return answer

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Cancel a job (a finished one is left alone, as Vertex answers with FAILED_PRECONDITION)."""
        job = self.job_view(job_id)
        if job["state"] in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"):
            raise FakeError(400, f"Cannot cancel CustomJob {job_id}: it is in state {job['state']}.")
        run = self.runs[job_id]
        if run.thread.is_alive():
            run.cancel()
        else:  # a held job: nothing runs, so it is cancelled at once
            with self.lock:
                self.jobs[job_id].update(state="JOB_STATE_CANCELLED", endTime=rfc3339(time.time()),
                                         error={"code": 1, "message": "CANCELED"})
        return {}

    def read_logs(self, body: dict[str, Any]) -> dict[str, Any]:
        """Cloud Logging ``entries:list`` for ``resource.labels.job_id="ID"`` (with ``pageToken``)."""
        match = re.search(r'resource\.labels\.job_id\s*=\s*"?([0-9]+)"?', body.get("filter", ""))
        with self.lock:
            entries = [e for e in self.logs if match and e.job_id == match.group(1)]
        start = int(body.get("pageToken") or 0)
        size = int(body.get("pageSize") or 1000)
        page = entries[start:start + size]
        answer: dict[str, Any] = {"entries": [
            {"textPayload": e.text, "timestamp": rfc3339(e.timestamp), "severity": e.severity,
             "resource": {"type": "ml_job", "labels": {"job_id": e.job_id, "task_name": e.task}},
             "insertId": str(start + i)} for i, e in enumerate(page)]}
        if start + size < len(entries):
            answer["nextPageToken"] = str(start + size)
        return answer


class _Handler(BaseHTTPRequestHandler):
    fake: VertexFake
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw.strip() else {}

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        call = f"{method} {path}"
        self.fake.requests.append((method, path))
        try:
            body = self._body() if method in ("POST", "PATCH") else {}
            fault = self.fake._take_fault(call, ("quota", "permission", "unavailable", "api_disabled"))
            if fault is not None:
                status, message = {
                    "quota": (429, "Quota exceeded for aiplatform.googleapis.com/custom_model_training_cpus "
                                   "in region us-central1 (injected fault)."),
                    "permission": (403, "Permission 'aiplatform.customJobs.create' denied on resource (or it may "
                                        "not exist) (injected fault)."),
                    "api_disabled": (403, "Vertex AI API has not been used in project cb-test-project before or it "
                                          "is disabled (SERVICE_DISABLED; injected fault)."),
                    "unavailable": (503, "The service is currently unavailable (injected fault)."),
                }[fault.kind]
                raise FakeError(status, message)
            self._send(200, self._route(method, path, query, body))
        except FakeError as exc:
            self._send(exc.status, {"error": {"code": exc.status, "message": exc.message,
                                              "status": _ERROR_STATUS.get(exc.status, "UNKNOWN")}})

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]) -> Any:
        from cloudbridge.testing import vertex_serving as serving

        fake = self.fake
        if method == "GET" and path.startswith(("/ui/", "/v1/")) and "/operations/" in path:
            name = path.split("/", 2)[2]
            with fake.lock:
                if name not in fake.operations:
                    raise FakeError(404, f"Operation {name} does not exist.")
                return fake.operations[name]
        if method == "POST" and path == "/v2/entries:list":
            return fake.read_logs(body)
        match = re.fullmatch(_PARENT + r"/customJobs(?:/(?P<id>[0-9]+))?(?P<verb>:cancel)?", path)
        if match:
            parent, job_id, verb = match.group("parent"), match.group("id"), match.group("verb")
            if method == "POST" and not job_id:
                return fake.create_job(parent, body)
            if method == "GET" and not job_id:
                return fake.list_jobs(parent, query)
            if method == "GET":
                return fake.job_view(job_id)
            if method == "POST" and verb:
                return fake.cancel_job(job_id)
            if method == "DELETE":
                fake.job_view(job_id)
                with fake.lock:
                    fake.jobs.pop(job_id, None)
                return fake.operation(parent, "Delete")
        return serving.route(fake, method, path, query, body)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")


@contextmanager
def vertex_fake(*, start_delay: float = 0.2) -> Iterator[VertexFake]:
    """Start the fake on 127.0.0.1 and a free port; on exit stop its jobs, servers and itself.

    Jobs read and write ``gs://`` through the storage serving that scheme (the GCS emulator when
    ``STORAGE_EMULATOR_HOST`` is set in this process).
    """
    fake = VertexFake(start_delay=start_delay)
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    fake.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                              name="vertex-fake")
    thread.start()
    try:
        yield fake
    finally:
        from cloudbridge.testing import vertex_serving

        for run in list(fake.runs.values()):
            if run.thread.is_alive():
                run.cancel()
                run.thread.join(15)
        vertex_serving.stop_all(fake)
        server.shutdown()
        server.server_close()
        thread.join(5)
