"""``AzureMLAdapter``: Azure ML command jobs as a :class:`~cloudbridge.managed.adapter.ManagedAdapter`.

A translator: the request comes from the pure :func:`~cloudbridge_azure.job_request.to_command_job`,
states from :mod:`cloudbridge_azure.states`, logs from :mod:`cloudbridge_azure.logs`; budget, limits,
``start_timeout``, restarts, reasons and the log tail are the core's
(:class:`~cloudbridge.managed.compute.ManagedCompute`). Calls go through the real ``azure-ai-ml``
SDK: the REST body is parsed into the SDK's ``Job`` and sent by ``MLClient.jobs``; failure details
and run times come from the run-history service (``RunOperations.get_run_details``), as the SDK's
own ``jobs.stream`` reads them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from cloudbridge.errors import ConflictError, InvalidSpec, NotFound
from cloudbridge.managed.adapter import CHECK_CODE_URI, Cause, ManagedAdapter, Placement, Snapshot
from cloudbridge.managed.limits import ATTEMPT_TAG, LIMITS_TAG, RESTART_OF_TAG, Limits
from cloudbridge.reasons import NON_ZERO_EXIT, OUT_OF_MEMORY, QUOTA_EXCEEDED, SPOT_RECLAIMED
from cloudbridge.specs import JobSpec
from cloudbridge_azure.errors import azure_errors
from cloudbridge_azure.job_request import iso_duration, to_command_job, workspace_id
from cloudbridge_azure.placement import place_job
from cloudbridge_azure.states import STATE_MAP, snapshot_of

if TYPE_CHECKING:
    from cloudbridge_azure.provider import AzureProvider

__all__ = ["AzureMLAdapter"]

_REASONS = tuple((re.compile(p, re.IGNORECASE), r) for p, r in (
    (r"quota", QUOTA_EXCEEDED),
    (r"preempt", SPOT_RECLAIMED),
    (r"out of memory|OOMKilled|CUDA out of memory", OUT_OF_MEMORY),
    (r"exit(?:ed)? with status code|exit code", NON_ZERO_EXIT),
))


class AzureMLAdapter(ManagedAdapter):
    """Azure ML ``jobs`` (create, get, cancel, list), run history and the job's ``user_logs``."""

    provider = "azure"
    service = "Azure ML"
    states = STATE_MAP
    reasons = _REASONS
    spot_name = "low-priority"

    def __init__(self, provider: AzureProvider) -> None:
        self.azure = provider
        self.settings = provider.settings
        self.poll_interval = self.settings.poll_interval

    @property
    def ml(self) -> Any:
        """The workspace's ``MLClient``."""
        return self.azure.clients.ml_client()

    # ---- pure ------------------------------------------------------------------------------------
    def place(self, spec: JobSpec) -> Placement:
        return place_job(spec, self.settings)

    def code_uri_prefix(self) -> str:
        s = self.settings
        if not (s.storage_account and s.container):
            raise InvalidSpec("no storage account/container is set for code, outputs and models",
                              field="settings.azure.container",
                              hint="set storage_account and container in the [azure] table")
        return f"az://{s.storage_account}/{s.container}/{s.prefix}/code".rstrip("/")

    def build_request(self, spec: JobSpec, placement: Placement, limits: Limits, *, code_uri: str, name: str,
                      tags: dict[str, str]) -> dict[str, Any]:
        code_id = code_uri if code_uri != CHECK_CODE_URI else f"{workspace_id(self.settings)}/codes/check/versions/1"
        body = to_command_job(spec, self.settings, job_name=name, instance_type=placement.instance_type,
                              code_id=code_id, timeout_s=limits.run_cap(), tags=tags)
        return {"name": name, **body}

    def restart_request(self, base: dict[str, Any], number: int, limits: Limits, used: float) -> dict[str, Any]:
        request, attempt = copy.deepcopy(base), limits.for_attempt(used)
        original = base["name"]
        request["name"] = f"{original}-r{number}"
        props = request["properties"]
        props["limits"]["timeout"] = iso_duration(attempt.run_cap(used))
        props["tags"].update({LIMITS_TAG: attempt.to_tag(), ATTEMPT_TAG: str(number + 1), RESTART_OF_TAG: original})
        return request

    def failure_reason(self, snapshot: Snapshot) -> str | None:
        """The core's rules, plus the exit code Azure ML words as "exited with status code N"."""
        reason = super().failure_reason(snapshot)
        code = re.search(r"status code (\d+)", snapshot.message or "")
        if reason == NON_ZERO_EXIT and code:
            return f"{NON_ZERO_EXIT} (code {code.group(1)})"
        return reason

    def explain(self, snapshot: Snapshot, cause: Cause, limits: Limits) -> str:
        """Azure ML's own terms for preemption of low-priority (spot) nodes; the core's wording otherwise."""
        if cause in ("spot_reclaimed", "no_spot_capacity"):
            said = f": {snapshot.message}" if snapshot.message else ""
            return (f"Azure ML preempted the job's low-priority node(s) and the job ended {snapshot.status}; "
                    f"it did not finish within its spot wait{said}")
        return super().explain(snapshot, cause, limits)

    # ---- calls -----------------------------------------------------------------------------------
    def _entity(self, request: dict[str, Any]) -> Any:
        from azure.ai.ml._restclient.arm_ml_service.models import JobBase
        from azure.ai.ml.entities import Job

        return Job._from_rest_object(JobBase(copy.deepcopy(request)))

    def create(self, request: dict[str, Any]) -> str:
        """``PUT .../jobs/NAME`` through ``MLClient.jobs.create_or_update``."""
        from cloudbridge_azure.mlclient import quiet_sdk_loggers

        name = request["name"]
        entity = self._entity(request)
        quiet_sdk_loggers()
        try:
            with azure_errors("create the Azure ML job", resource=name):
                self.ml.jobs.create_or_update(entity)
        except InvalidSpec as exc:
            if "already exists" in str(exc):
                raise ConflictError(f"Azure ML job {name} already exists") from exc.__cause__
            raise
        return name

    def get_raw(self, name: str) -> dict[str, Any]:
        """The job's REST resource (``GET .../jobs/NAME``); :class:`NotFound` naming the workspace."""
        try:
            with azure_errors("read the Azure ML job", resource=name):
                job = self.ml.jobs._operation_2023_02_preview.get(  # the SDK's own REST client
                    id=name, resource_group_name=self.settings.resource_group,
                    workspace_name=self.settings.workspace)
        except NotFound as exc:
            raise NotFound(f"no Azure ML job {name!r} in workspace {self.settings.workspace}") from exc.__cause__
        return job.as_dict() if hasattr(job, "as_dict") else job.serialize()

    def run_details(self, name: str) -> dict[str, Any]:
        """Run history's details of the job (status, times, Azure's error shape); ``{}`` when absent."""
        try:
            with azure_errors("read the job's run details", resource=name):
                details = self.ml.jobs._runs_operations.get_run_details(name)
        except NotFound:
            return {}
        return details.as_dict() if hasattr(details, "as_dict") else details.serialize()

    def describe(self, native_id: str) -> Snapshot:
        raw = self.get_raw(native_id)
        status = (raw.get("properties") or {}).get("status")
        details = self.run_details(native_id) if status not in ("NotStarted", "Queued", None) else {}
        return snapshot_of(raw, details)

    def stop(self, native_id: str) -> None:
        with azure_errors("cancel the Azure ML job", resource=native_id):
            self.ml.jobs.begin_cancel(native_id)  # the request is sent here; the job reports Canceled later

    def read_logs(self, native_id: str, *, follow: bool = False, is_done: Callable[[], bool] | None = None,
                  poll_interval: float = 5.0, deadline: float | None = None) -> Iterator[str]:
        from cloudbridge_azure.logs import read_logs

        return read_logs(self, native_id, follow=follow, is_done=is_done, poll_interval=poll_interval,
                         deadline=deadline)

    def list_jobs(self) -> list[Snapshot]:
        """cloudbridge's Azure ML jobs in the workspace (tagged with a job id; restarts left out)."""
        found = []
        with azure_errors("list Azure ML jobs"):
            for job in self.ml.jobs._operation_2023_02_preview.list(
                    resource_group_name=self.settings.resource_group, workspace_name=self.settings.workspace):
                raw = job.as_dict() if hasattr(job, "as_dict") else job.serialize()
                tags = (raw.get("properties") or {}).get("tags") or {}
                if "cloudbridge:job-id" in tags and RESTART_OF_TAG not in tags:
                    found.append(snapshot_of(raw, {}))
        return found

    def add_tags(self, snapshot: Snapshot, tags: dict[str, str]) -> None:
        raw = snapshot.ref or self.get_raw(snapshot.native_id)
        body = {"name": snapshot.native_id, "properties": copy.deepcopy(raw["properties"])}
        body["properties"]["tags"] = {**(body["properties"].get("tags") or {}), **tags}
        with azure_errors("tag the Azure ML job", resource=snapshot.native_id):
            self.ml.jobs._operation_2023_02_preview.create_or_update(
                id=snapshot.native_id, resource_group_name=self.settings.resource_group,
                workspace_name=self.settings.workspace, body=body)

    def find_restarts(self, original: str) -> list[str]:
        pattern = re.compile(re.escape(original) + r"-r(\d+)$")
        found: dict[int, str] = {}
        with azure_errors("list the job's restarts", resource=original):
            for job in self.ml.jobs._operation_2023_02_preview.list(
                    resource_group_name=self.settings.resource_group, workspace_name=self.settings.workspace):
                match = pattern.match(job.name or "")
                if match:
                    found[int(match.group(1))] = job.name
        return [found[n] for n in sorted(found)]

    def request_of(self, first: Snapshot, tags: dict[str, str]) -> dict[str, Any]:
        raw = first.ref or self.get_raw(first.native_id)
        props = {k: v for k, v in copy.deepcopy(raw["properties"]).items()
                 if k not in ("status", "services", "parentJobName")}
        props["tags"] = {**(props.get("tags") or {}), **tags}
        return {"name": first.native_id, "properties": props}
