"""``ManagedCompute``: :class:`~cloudbridge.interfaces.Compute` for any managed training service.

Submit runs one pipeline, whatever the cloud::

    place (adapter) -> estimate (planner catalog) -> budget -> limits -> package + upload workdir
    -> build request (adapter, pure) -> create (adapter)

Reads go through :class:`~cloudbridge.managed.lifecycle.Tracker` (state table, ``start_timeout``,
restarts, reasons) and add the failure tail (the last :data:`TAIL_LINES` log lines) to a failed
job's detail. A plugin instantiates it with its adapter and storage (see
:mod:`cloudbridge.managed.adapter`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from cloudbridge.errors import CloudbridgeError, ConflictError, InvalidSpec, NotFound, ResourceUnavailable
from cloudbridge.interfaces import Compute, Storage
from cloudbridge.managed.adapter import CHECK_CODE_URI, ManagedAdapter, Placement
from cloudbridge.managed.lifecycle import Tracker
from cloudbridge.managed.limits import (
    DEFAULT_MAX_RUNTIME,
    JOB_ID_TAG,
    LIMITS_TAG,
    NAME_TAG,
    Limits,
    limits_for,
)
from cloudbridge.managed.logs import follow_logs
from cloudbridge.managed.reading import job_from_snapshot, state_of
from cloudbridge.records import Job
from cloudbridge.specs import JobSpec

__all__ = ["TAIL_LINES", "ManagedCompute", "job_tags", "plan_limits"]

#: Log lines appended to the detail of a failed job.
TAIL_LINES = 20


def estimate_hourly(spec: JobSpec, provider: str, placement: Placement, catalog: Any = None) -> float | None:
    """The planner catalog's estimated USD per hour of ``spec`` on ``placement`` (``None`` unpriced)."""
    from cloudbridge.planner.cost import estimate_resources

    try:
        estimate = estimate_resources(spec.resources, provider, catalog=catalog, region=placement.region,
                                      instance_type=placement.instance_type)
    except ResourceUnavailable:
        return None
    return estimate.hourly if estimate.priced else None


def plan_limits(adapter: ManagedAdapter, spec: JobSpec, placement: Placement,
                catalog: Any = None) -> tuple[Placement, Limits]:
    """Price ``placement`` and turn the spec's budget and limits into :class:`Limits`.

    ``max_runtime`` beyond ``adapter.longest_runtime`` is :class:`InvalidSpec`; a budget too small
    to start is :class:`~cloudbridge.errors.BudgetExceeded`.
    """
    from cloudbridge.specs import spec_error

    resources = spec.resources
    runtime = resources.max_runtime_seconds or DEFAULT_MAX_RUNTIME
    longest = adapter.longest_runtime
    if longest and runtime > longest:
        kind = f"{adapter.spot_name} " if resources.spot else ""
        raise spec_error(
            spec,
            "resources.max_runtime",
            f"max_runtime {resources.max_runtime} is longer than {adapter.service} {kind}training allows "
            f"({longest // 86400} days)",
            hint="split the job and resume it from checkpoints",
        )
    if resources.max_cost is not None:
        catalog = catalog if catalog is not None else adapter.catalog
        placement = replace(placement, hourly=estimate_hourly(spec, adapter.provider, placement, catalog))
    limits = limits_for(spec, placement.hourly, restartable=bool(resources.spot and spec.checkpoints))
    return placement, limits


def job_tags(job_id: str, spec: JobSpec, limits: Limits) -> dict[str, str]:
    """The tags the core stores on a new job: its id, its spec name and (when needed) its limits."""
    tags = {JOB_ID_TAG: job_id, NAME_TAG: spec.name}
    if limits.tagged:
        tags[LIMITS_TAG] = limits.to_tag()
    return tags


class ManagedCompute(Compute):
    """:class:`Compute` on a managed training service, through ``adapter``; ``storage`` holds code packages.

    Job ids are ``<adapter.provider>-<native id>``. Subclass it only to add provider-specific
    conveniences; the lifecycle itself belongs here.
    """

    #: ``submit`` packages and uploads the workdir (``cloudbridge run`` shows its size first).
    uploads_workdir = True

    def __init__(self, adapter: ManagedAdapter, storage: Storage) -> None:
        self.adapter = adapter
        self.storage = storage
        self.poll_interval = adapter.poll_interval
        self.tracker = Tracker(adapter)
        #: Bytes uploaded by the last :meth:`submit` (code + support files; 0 when deduplicated).
        self.last_upload_bytes = 0
        self._tails: dict[str, list[str]] = {}

    # ---- submit ----------------------------------------------------------------------------------
    def prepare(self, spec: JobSpec, *, code_uri: str = CHECK_CODE_URI,
                name: str | None = None) -> tuple[str, Any, Placement, Limits]:
        """Place, price, limit and build the request; returns ``(native name, request, placement, limits)``."""
        name = name or self.adapter.new_name(spec)
        placement, limits = plan_limits(self.adapter, spec, self.adapter.place(spec))
        tags = job_tags(f"{self.adapter.provider}-{name}", spec, limits)
        request = self.adapter.build_request(spec, placement, limits, code_uri=code_uri, name=name, tags=tags)
        return name, request, placement, limits

    def validate(self, spec: JobSpec) -> str:
        """Check ``spec`` as the service would take it (no cloud call, nothing uploaded); returns a native name."""
        return self.prepare(spec)[0]

    def upload_code(self, spec: JobSpec) -> tuple[str, int]:
        """Package the workdir and upload it unless identical content is already there; ``(URI, bytes)``."""
        from cloudbridge.packaging import upload_workdir

        workdir = spec.resolved_workdir()
        if workdir is None:
            raise InvalidSpec(f"{self.adapter.service} jobs need a workdir to ship", source=spec.source,
                              field="workdir")
        return upload_workdir(workdir, self.adapter.code_uri_prefix(), storage=self.storage, spec=spec)

    def submit(self, spec: JobSpec) -> Job:
        """Check, upload code (deduplicated), create the job, return its first record.

        A create that fails after the upload leaves no orphan: a job that was created anyway is
        stopped, and the error says so and where the uploaded package is.
        """
        name = self.validate(spec)  # everything that needs no upload, before uploading anything
        code_uri, code_bytes = self.upload_code(spec)
        self.last_upload_bytes = code_bytes + self.adapter.upload_support(self.storage)
        name, request, placement, limits = self.prepare(spec, code_uri=code_uri, name=name)
        self._create(name, request, code_uri)
        self.tracker.requests[name] = request
        self.tracker.spec_names[name] = spec.name
        job = self.get(f"{self.adapter.provider}-{name}")
        job.extra["code_uri"] = code_uri
        job.extra["uploaded_bytes"] = self.last_upload_bytes
        job.extra.setdefault("warnings", []).extend(self.adapter.warnings(spec))
        if spec.resources.max_cost is not None and limits.budget_cap is None:
            job.extra["warnings"].append(f"no catalog price for {placement.instance_type}: max_cost cannot be "
                                         f"enforced by {self.adapter.service}")
        if not job.extra["warnings"]:
            del job.extra["warnings"]
        return job

    def _create(self, name: str, request: Any, code_uri: str) -> None:
        job_id = f"{self.adapter.provider}-{name}"
        try:
            self.adapter.create(request)
        except ConflictError:
            # a create retried after its first reply was lost: the job is ours if it carries our id
            if self.tracker.tags(self.adapter.describe(name), fresh=True).get(JOB_ID_TAG) != job_id:
                raise
        except CloudbridgeError as exc:
            cleanup = self._stop_orphan(name) if self.adapter.may_have_created(exc) else ""
            exc.message = f"{exc.message}{cleanup}; the code package stays at {code_uri}"
            exc.args = (exc.message,) + exc.args[1:]
            raise

    def _stop_orphan(self, name: str) -> str:
        """After a failed create: stop the job if it exists anyway; say what was done."""
        try:
            snap = self.adapter.describe(name)
        except NotFound:
            return "; no job was created"
        except CloudbridgeError:
            return f"; it may exist anyway: check {self.adapter.service} job {name}"
        try:
            if not state_of(self.adapter, snap).is_terminal:
                self.adapter.stop(name)
        except CloudbridgeError as exc:
            job_id = f"{self.adapter.provider}-{name}"
            return f"; it was created and could not be stopped ({exc}): cloudbridge cancel {job_id}"
        return "; it was created anyway and has been stopped"

    # ---- read ------------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        """The job's current state across its attempts, with ``start_timeout`` and restarts enforced."""
        job = self.tracker.track(self.adapter.native_id_of(job_id))
        if job.state.value == "FAILED" and job.detail and job.native_id:
            tail = self._log_tail(job.native_id)
            if tail:
                from cloudbridge.jobstore.redact import redact_text

                job.detail += f"\nlast {len(tail)} job log lines:\n" + redact_text("\n".join(tail))
        return job.bind(self)

    def _log_tail(self, native_id: str) -> list[str]:
        """The last :data:`TAIL_LINES` lines the failed job logged (read once, then cached)."""
        if native_id not in self._tails:
            try:
                lines = self.adapter.tail_logs(native_id, TAIL_LINES)
            except CloudbridgeError:
                return []  # logs are a courtesy here; the failure reason stands on its own
            self._tails[native_id] = list(lines)
        return self._tails[native_id]

    def list(self) -> list[Job]:
        """cloudbridge's jobs on this service, newest first (restarts are folded into their job by ``get``)."""
        jobs = [job_from_snapshot(self.adapter, snap).bind(self) for snap in self.adapter.list_jobs()]
        jobs.sort(key=lambda j: j.created_at or 0.0, reverse=True)
        return jobs

    def cancel(self, job_id: str) -> Job:
        """Stop the newest attempt (the service keeps what the job uploaded so far)."""
        job = self.get(job_id)
        if job.state.is_terminal:
            return job
        self.adapter.stop(job.native_id or "")
        return self.get(job_id)

    def logs(self, job_id: str, follow: bool = False, timeout: float | None = None) -> Iterator[str]:
        """The job's log lines, attempt after attempt.

        ``follow`` polls until the job ends (restarts included); with ``timeout`` seconds a follow
        ends with :class:`~cloudbridge.errors.StageTimeout` (stage ``log follow``); the job keeps running.
        """
        native = self.adapter.native_id_of(job_id)
        if follow:
            self.adapter.describe(native)  # an unknown job is NotFound now, not an endless poll
        return follow_logs(self, job_id, follow=follow, timeout=timeout)
