"""Vertex AI custom jobs on the managed-jobs core: :class:`VertexAdapter` (a translator) and
:class:`VertexCompute`.

* **Names.** Vertex assigns a CustomJob a numeric id; cloudbridge names each job with a unique
  display name (:meth:`ManagedAdapter.new_name`), which is the native id the core sees
  (``gcp-<display name>``). It is resolved to the resource name through ``customJobs.list`` with
  ``filter=display_name="..."`` once per process.
* **State map** (``JobState`` of the ``aiplatform_v1`` enum): QUEUED -> PENDING, PENDING ->
  STARTING, RUNNING -> RUNNING, SUCCEEDED -> SUCCEEDED, FAILED/EXPIRED -> FAILED,
  CANCELLING/CANCELLED -> CANCELLED; PAUSED/UPDATING stay RUNNING.
* **Failures** come from ``error.code`` and ``error.message``: code 4 (DEADLINE_EXCEEDED) is the
  ``scheduling.timeout`` cap; a preempted Spot VM is spot capacity reclaimed (the core restarts a
  checkpointing spot job); the message's words name quota, capacity, image and exit-code failures.
* **Tags.** The core's ``cloudbridge:*`` tags are labels (:mod:`cloudbridge_gcp.labels`). Vertex cannot
  change a CustomJob's labels afterwards, so tags added later (``cloudbridge:stopped-by``) are kept in
  ``gs://STAGING/PREFIX/jobs/<name>/tags.json`` and merged by :meth:`VertexAdapter.read_tags`.
* **Logs** come from Cloud Logging (``entries.list`` with ``resource.type="ml_job"`` and
  ``resource.labels.job_id``), where Vertex writes every replica's stdout and stderr.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from cloudbridge.errors import ConflictError, NotFound
from cloudbridge.managed import ManagedAdapter, ManagedCompute, Placement, Snapshot
from cloudbridge.managed.limits import ATTEMPT_TAG, JOB_ID_TAG, LIMITS_TAG, NAME_TAG, RESTART_OF_TAG, STOPPED_BY_TAG
from cloudbridge.reasons import IMAGE_PULL_FAILED, NO_CAPACITY, NON_ZERO_EXIT, OUT_OF_MEMORY, QUOTA_EXCEEDED
from cloudbridge.records import JobState
from cloudbridge_gcp.custom_job import LONGEST_RUNTIME, bucket_prefix, to_custom_job
from cloudbridge_gcp.errors import gcp_errors, retry
from cloudbridge_gcp.labels import decode_labels, encode_tags
from cloudbridge_gcp.machines import place
from cloudbridge_gcp.session import GcpSession

__all__ = ["VertexAdapter", "VertexCompute"]

TAGS = (JOB_ID_TAG, NAME_TAG, LIMITS_TAG, STOPPED_BY_TAG, ATTEMPT_TAG, RESTART_OF_TAG)
_ENDED = ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED")
_PREEMPTED = re.compile(r"preempt|spot vm was reclaimed", re.IGNORECASE)
_NO_SPOT = re.compile(r"spot capacity .*not available|max_?wait_?duration", re.IGNORECASE)
_EXIT_STATUS = re.compile(r"non-zero status of (\d+)")


def _epoch(value: Any) -> float | None:
    return value.timestamp() if value else None


class VertexAdapter(ManagedAdapter):
    """:class:`ManagedAdapter` for Vertex AI custom jobs (provider ``gcp``)."""

    provider = "gcp"
    service = "Vertex AI"
    states = {
        "JOB_STATE_QUEUED": JobState.PENDING,
        "JOB_STATE_PENDING": JobState.STARTING,
        "JOB_STATE_RUNNING": JobState.RUNNING,
        "JOB_STATE_PAUSED": JobState.RUNNING,
        "JOB_STATE_UPDATING": JobState.RUNNING,
        "JOB_STATE_SUCCEEDED": JobState.SUCCEEDED,
        "JOB_STATE_PARTIALLY_SUCCEEDED": JobState.FAILED,
        "JOB_STATE_FAILED": JobState.FAILED,
        "JOB_STATE_EXPIRED": JobState.FAILED,
        "JOB_STATE_CANCELLING": JobState.CANCELLED,
        "JOB_STATE_CANCELLED": JobState.CANCELLED,
    }
    reasons = tuple((re.compile(p, re.IGNORECASE), r) for p, r in (
        (r"quota|RESOURCE_EXHAUSTED", QUOTA_EXCEEDED),
        (r"out of memory|OOM|exit(ed)? .*status of 137", OUT_OF_MEMORY),
        (r"does not have enough resources|ZONE_RESOURCE_POOL_EXHAUSTED|stockout", NO_CAPACITY),
        (r"image|container .*could not be (pulled|fetched)", IMAGE_PULL_FAILED),
        (r"non-zero status|exit(ed)? (with )?code", NON_ZERO_EXIT),
    ))
    longest_runtime = LONGEST_RUNTIME
    spot_name = "Spot VM"

    def __init__(self, session: GcpSession, storage: Any = None) -> None:
        self.session = session
        self.settings = session.settings
        self.storage = storage
        self._resources: dict[str, str] = {}
        self.poll_interval = self.settings.poll_interval

    # ---- pure ----------------------------------------------------------------------------------
    def place(self, spec: Any) -> Placement:
        """The catalog's machine for ``spec`` in the configured region (see :func:`~cloudbridge_gcp.machines.place`)."""
        return place(spec, self.session.region, reservation=self.settings.reservation, catalog=self.catalog)

    def failure_reason(self, snapshot: Snapshot) -> str | None:
        """The rules' reason; a non-zero exit names the replica's status (``non-zero exit (code 3)``)."""
        reason = super().failure_reason(snapshot)
        status = _EXIT_STATUS.search(snapshot.message or "")
        if reason == NON_ZERO_EXIT and status:
            return f"{NON_ZERO_EXIT} (code {status.group(1)})"
        return reason

    def code_uri_prefix(self) -> str:
        """``gs://STAGING/PREFIX/code``."""
        return f"{bucket_prefix(self.settings)}/code"

    def build_request(self, spec: Any, placement: Placement, limits: Any, *, code_uri: str, name: str,
                      tags: dict[str, str]) -> dict[str, Any]:
        """:func:`~cloudbridge_gcp.custom_job.to_custom_job` (pure)."""
        self.session.project  # noqa: B018 - "no project" is bad input, refused before anything is uploaded
        return to_custom_job(spec, placement, limits, code_uri, settings=self.settings, name=name, tags=tags)

    def restart_request(self, base: dict[str, Any], number: int, limits: Any, used: float) -> dict[str, Any]:
        """``base`` renamed ``<name>-r<number>``, with the run-time cap left and the restart's tags."""
        request = copy.deepcopy(base)
        original = base["displayName"]
        attempt = limits.for_attempt(used)
        request["displayName"] = f"{original}-r{number}"
        request["jobSpec"]["scheduling"]["timeout"] = f"{attempt.run_cap(used)}s"
        tags = decode_labels(base.get("labels", {}), TAGS)
        tags.update({LIMITS_TAG: attempt.to_tag(), ATTEMPT_TAG: str(number + 1), RESTART_OF_TAG: original})
        labels = {k: v for k, v in base.get("labels", {}).items() if not k.startswith("cb_")}
        labels.update(encode_tags(tags))
        request["labels"] = labels
        return request

    # ---- calls ---------------------------------------------------------------------------------
    @property
    def _jobs(self) -> Any:
        return self.session.vertex("jobs")

    def create(self, request: dict[str, Any]) -> str:
        """``customJobs.create``; :class:`ConflictError` when a job with this display name exists."""
        from google.cloud import aiplatform_v1

        name = request["displayName"]
        if self._lookup(name) is not None:
            raise ConflictError(f"a Vertex AI job named {name!r} exists")
        message = aiplatform_v1.CustomJob.from_json(json.dumps(request))
        with gcp_errors("create the Vertex AI custom job", resource=name):
            job = self._jobs.create_custom_job(parent=self.session.parent, custom_job=message,
                                               timeout=self.settings.timeout)
        self._resources[name] = job.name
        return name

    def _lookup(self, name: str) -> str | None:
        """The resource name of the job whose display name is ``name`` (``None`` when there is none)."""
        if name in self._resources:
            return self._resources[name]
        if name.isdigit():
            return f"{self.session.parent}/customJobs/{name}"
        with gcp_errors("find the Vertex AI custom job", resource=name):
            pages = self._jobs.list_custom_jobs(request={"parent": self.session.parent,
                                                         "filter": f'display_name="{name}"'},
                                                retry=retry(self.settings.timeout), timeout=self.settings.timeout)
            for job in pages:
                if job.display_name == name:
                    self._resources[name] = job.name
                    return job.name
        return None

    def _get(self, native_id: str) -> Any:
        resource = self._lookup(native_id)
        if resource is None:
            raise NotFound(f"no Vertex AI job named {native_id!r} in {self.session.parent}")
        with gcp_errors("read the Vertex AI custom job", resource=native_id):
            return self._jobs.get_custom_job(name=resource, retry=retry(self.settings.timeout),
                                             timeout=self.settings.timeout)

    def describe(self, native_id: str) -> Snapshot:
        """The job's :class:`Snapshot` (tags are read by :meth:`read_tags`)."""
        return self._snapshot(self._get(native_id))

    def _snapshot(self, job: Any) -> Snapshot:
        state = job.state.name
        code = job.error.code if job.error else 0
        message = job.error.message if code else None
        preempted = bool(code and message and _PREEMPTED.search(message))
        no_spot = bool(code and message and _NO_SPOT.search(message))
        limit = "runtime" if code == 4 else ("spot_wait" if preempted or no_spot else None)
        started, ended = _epoch(job.start_time), _epoch(job.end_time)
        used = ((ended or time.time()) - started) if started else 0.0
        timeout = job.job_spec.scheduling.timeout
        output = job.job_spec.base_output_directory.output_uri_prefix or None
        labels = dict(job.labels)
        return Snapshot(
            native_id=job.display_name, status=state, message=message, created_at=_epoch(job.create_time),
            started_at=started, ended_at=ended, modified_at=_epoch(job.update_time), tags=None,
            provisioning=state in ("JOB_STATE_QUEUED", "JOB_STATE_PENDING"),
            stopped=state in ("JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED"), limit_stop=limit,  # type: ignore[arg-type]
            runtime_cap=int(timeout.total_seconds()) if timeout else None, used_seconds=max(used, 0.0),
            interruptions=1 if preempted else 0, name=decode_labels(labels, (NAME_TAG,)).get(NAME_TAG),
            outputs_uri=output, extra={"vertex_state": state, "vertex_job": job.name,
                                       **({"vertex_error_code": code} if code else {})},
            ref={"name": job.name, "labels": labels},
        )

    def stop(self, native_id: str) -> None:
        """``customJobs.cancel`` (a job that already ended is left as it is)."""
        from google.api_core import exceptions as gx

        resource = self._lookup(native_id)
        if resource is None:
            raise NotFound(f"no Vertex AI job named {native_id!r}")
        try:
            with gcp_errors("cancel the Vertex AI custom job", resource=native_id):
                self._jobs.cancel_custom_job(name=resource, timeout=self.settings.timeout)
        except Exception as exc:
            if isinstance(exc.__cause__, (gx.FailedPrecondition, gx.BadRequest)):
                return  # already ended
            raise

    def _tags_uri(self, name: str) -> str:
        return f"{bucket_prefix(self.settings)}/jobs/{name}/tags.json"

    def read_tags(self, snapshot: Snapshot) -> dict[str, str]:
        """The labels' tags plus those added later (kept beside the job in the staging bucket)."""
        labels = (snapshot.ref or {}).get("labels")
        if labels is None:
            labels = dict(self._get(snapshot.native_id).labels)
        tags = decode_labels(labels, TAGS)
        if self.storage is not None and self.settings.staging_bucket:
            try:
                tags.update(json.loads(self.storage.read_bytes(self._tags_uri(snapshot.native_id))))
            except NotFound:
                pass
        return tags

    def add_tags(self, snapshot: Snapshot, tags: dict[str, str]) -> None:
        """Keep ``tags`` in ``gs://STAGING/PREFIX/jobs/<name>/tags.json`` (CustomJob labels cannot change)."""
        uri = self._tags_uri(snapshot.native_id)
        try:
            current = json.loads(self.storage.read_bytes(uri))
        except NotFound:
            current = {}
        current.update(tags)
        self.storage.write_bytes(uri, json.dumps(current, sort_keys=True).encode())

    def find_restarts(self, original: str) -> list[str]:
        """Jobs whose ``cloudbridge:restart-of`` label names ``original``, by attempt."""
        key, value = next(iter(encode_tags({RESTART_OF_TAG: original}).items()))
        found = {}
        with gcp_errors("list restarts of the Vertex AI custom job", resource=original):
            for job in self._jobs.list_custom_jobs(request={"parent": self.session.parent,
                                                            "filter": f'labels.{key}="{value}"'}):
                match = re.fullmatch(re.escape(original) + r"-r(\d+)", job.display_name)
                if match:
                    self._resources[job.display_name] = job.name
                    found[int(match.group(1))] = job.display_name
        return [found[n] for n in sorted(found)]

    def request_of(self, first: Snapshot, tags: dict[str, str]) -> dict[str, Any]:
        """The CustomJob behind ``first`` as a create request (read back from Vertex)."""
        from google.cloud import aiplatform_v1

        job = self._get(first.native_id)
        request = json.loads(aiplatform_v1.CustomJob.to_json(job, use_integers_for_enums=False))
        return {key: request[key] for key in ("displayName", "jobSpec", "labels") if key in request}

    def list_jobs(self) -> list[Snapshot]:
        """cloudbridge's custom jobs in the region (those with a job-id label, first attempts only)."""
        snaps = []
        with gcp_errors("list Vertex AI custom jobs"):
            for job in self._jobs.list_custom_jobs(request={"parent": self.session.parent},
                                                   retry=retry(self.settings.timeout)):
                tags = decode_labels(dict(job.labels), (JOB_ID_TAG, RESTART_OF_TAG))
                if JOB_ID_TAG in tags and RESTART_OF_TAG not in tags:
                    self._resources[job.display_name] = job.name
                    snaps.append(self._snapshot(job))
        return snaps

    def read_logs(self, native_id: str, *, follow: bool = False, is_done: Callable[[], bool] | None = None,
                  poll_interval: float = 5.0, deadline: float | None = None) -> Iterator[str]:
        """The job's lines from Cloud Logging (``resource.type="ml_job"``), oldest first."""
        from cloudbridge_gcp.logs import read_job_logs

        resource = self._lookup(native_id)
        if resource is None:
            raise NotFound(f"no Vertex AI job named {native_id!r}")
        yield from read_job_logs(self.session, resource.rsplit("/", 1)[-1], follow=follow, is_done=is_done,
                                 poll_interval=poll_interval, deadline=deadline, native_id=native_id)


class VertexCompute(ManagedCompute):
    """:class:`~cloudbridge.interfaces.Compute` on Vertex AI custom jobs."""

    def __init__(self, session: GcpSession, storage: Any) -> None:
        super().__init__(VertexAdapter(session, storage), storage)

