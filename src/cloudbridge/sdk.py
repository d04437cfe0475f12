"""The SDK facade: ``cb.run``, ``cb.get_job``, ``cb.jobs``, ``cb.cancel``, ``cb.logs``, ``cb.deploy``,
``cb.endpoints``, ``cb.storage``...

Every job of every provider is recorded in the :class:`~cloudbridge.jobstore.store.JobStore`, so
``cb.jobs()`` lists them all without calling any cloud, and ids are global: ``local-1a2b3c4d``,
``aws-...`` (the provider's name, a dash, the provider's own suffix). Jobs returned here are bound
to their provider's :class:`~cloudbridge.interfaces.Compute`, so ``job.wait()``, ``job.logs()``
and ``job.cancel()`` work on them directly::

    import cloudbridge as cb
    job = cb.run("job.yaml", provider="local")
    job.wait()
    print(job.state, job.reason)

Whenever a provider reports a state different from the stored one, the record is updated and the
``cloudbridge_job_event`` hook fires (the local backend does this itself, from its supervisor).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudbridge.errors import InvalidSpec, NotFound, UserError
from cloudbridge.interfaces import Compute
from cloudbridge.records import Job

if TYPE_CHECKING:
    from cloudbridge.hookspecs import ProviderInfo
    from cloudbridge.interfaces import Provider, URILike
    from cloudbridge.planner.cost import CostEstimate
    from cloudbridge.records import Endpoint
    from cloudbridge.scoped_storage import ScopedStorage
    from cloudbridge.specs import EndpointSpec, JobSpec

__all__ = ["budget_estimate", "cancel", "deploy", "endpoints", "get_job", "jobs", "logs", "provider", "providers",
           "run", "storage", "validate"]


def _store() -> Any:
    from cloudbridge.jobstore.store import JobStore

    return JobStore.default()


def provider(name: str, *, profile: str | None = None) -> Provider:
    """The provider ``name`` (``ProviderNotFound`` lists the known ones and install hints)."""
    from cloudbridge.backends import get_provider

    return get_provider(name, profile=profile)


def storage(uri: URILike, *, profile: str | None = None) -> ScopedStorage:
    """Storage scoped to the prefix ``uri`` (``s3://bucket/runs``, ``gs://...``, ``az://...``, a local path).

    Every method takes a key relative to ``uri`` (``"model.safetensors"``) or a full URI inside it;
    a location outside the prefix is refused (:class:`~cloudbridge.errors.UnsafeKey`). The provider
    that serves the scheme does the work. Methods (see :class:`~cloudbridge.interfaces.Storage`):

    * ``stat(key) -> ObjectInfo`` -- size, mtime, etag/checksum; ``NotFound`` when absent
    * ``exists(key) -> bool``
    * ``list(key="", recursive=True) -> Iterator[ObjectInfo]`` -- objects under ``key`` (default: all)
    * ``read_bytes(key) -> bytes`` / ``write_bytes(key, data) -> ObjectInfo``
    * ``open_read(key) -> IO[bytes]`` / ``write_stream(key, stream, size=None) -> ObjectInfo``
    * ``upload(local_path, key) -> ObjectInfo`` / ``download(key, local_path) -> None``
    * ``delete(key) -> None`` -- a missing object is not an error
    * ``du(key="") -> (count, bytes)`` -- objects and bytes under ``key``
    * ``abort_incomplete(key="", older_than_s=3600) -> int`` -- discard interrupted multipart writes
    * ``uri(key) -> StorageURI`` -- the full location of ``key``; ``prefix`` is ``uri`` parsed

    Example::

        store = cb.storage("s3://bucket/runs")
        store.upload("model.safetensors", "sst2/model.safetensors")   # s3://bucket/runs/sst2/...
        for info in store.list("sst2"):
            print(info.key, info.size)
    """
    from cloudbridge.scoped_storage import ScopedStorage
    from cloudbridge.transfers import storage_for
    from cloudbridge.uri import StorageURI, parse_uri

    prefix = uri if isinstance(uri, StorageURI) else parse_uri(uri)
    return ScopedStorage(storage_for(prefix, profile=profile), prefix)


def providers() -> dict[str, ProviderInfo]:
    """Every registered provider by name (nothing is imported beyond the plugins' registrations)."""
    from cloudbridge.plugins import provider_infos

    return provider_infos()


def _load_spec(spec_or_path: Any) -> JobSpec:
    from cloudbridge.specs import JobSpec, job_spec_from_dict, load_job_spec

    if isinstance(spec_or_path, JobSpec):
        return spec_or_path
    if isinstance(spec_or_path, dict):
        return job_spec_from_dict(spec_or_path)
    if isinstance(spec_or_path, (str, os.PathLike)):
        return load_job_spec(spec_or_path)
    raise InvalidSpec(f"cb.run() takes a JobSpec, a dict or a YAML path, not {type(spec_or_path).__name__}")


def _record(job: Job, compute: Compute, spec: JobSpec | None = None) -> Job:
    """Store what a provider reported; fire the job events it brings, once across processes
    (:func:`cloudbridge.jobstore.events.observe`). A provider whose compute sets ``records_jobs = True``
    (the local backend) keeps the store itself and is left alone.
    """
    if getattr(compute, "records_jobs", False):
        return job
    from cloudbridge.jobstore.events import observe

    observe(job, spec)
    return job


def run(
    spec_or_path: JobSpec | dict[str, Any] | str | os.PathLike[str],
    provider: str | None = None,
    wait: bool = False,
    profile: str | None = None,
    timeout: float | None = None,
    force: bool = False,
) -> Job:
    """Submit a job (a :class:`JobSpec`, a dict or a YAML path) and return it, bound to its provider.

    ``provider`` overrides ``spec.provider``; ``overrides.<provider>`` of the spec configures it.
    With ``wait=True`` this blocks until the job ends (``timeout`` seconds at most:
    :class:`~cloudbridge.errors.StageTimeout`). The job is recorded in the job store whatever the
    provider. A ``checkpoints`` location in use by an unfinished job of the same provider is refused
    (:class:`~cloudbridge.errors.ConflictError` naming that job) unless ``force=True``.
    """
    from cloudbridge.backends import get_provider
    from cloudbridge.checkpoint_guard import check_checkpoints_free

    spec = _load_spec(spec_or_path)
    if provider:
        spec = spec.with_provider(provider)
    if spec.provider == "auto":  # the planner's top placement among installed providers
        from cloudbridge.planner.placement import resolve_auto

        spec = resolve_auto(spec)
    prov = get_provider(spec.provider, profile=profile, overrides=spec.overrides.get(spec.provider))
    compute = prov.compute
    check_checkpoints_free(spec, force=force)
    budget = None if getattr(compute, "records_jobs", False) else _check_cloud_budget(spec)
    job = compute.submit(spec)
    if budget is not None:
        job.extra["budget"] = budget
    _record(job, compute, spec)
    job.bind(compute)
    if wait:
        job.wait(timeout)
        _record(job, compute)
    return job


def _check_cloud_budget(spec: JobSpec) -> dict[str, Any]:
    """The estimate and budget warnings of a cloud job, or :class:`BudgetExceeded` (see :mod:`cloudbridge.budgets`)."""
    from cloudbridge.budgets import check_cloud_budget

    return check_cloud_budget(spec)


def validate(spec_or_path: JobSpec | dict[str, Any] | str | os.PathLike[str], provider: str | None = None,
             profile: str | None = None, force: bool = False) -> JobSpec:
    """Check a job spec without submitting anything; returns the spec as it would run.

    The spec itself is validated on load; then the provider's :meth:`Compute.validate
    <cloudbridge.interfaces.Compute.validate>` makes every check its submit makes (the AWS plugin
    builds its request; the local backend checks nodes, GPUs and budget), creating nothing. So a spec
    that passes here is accepted by :func:`run`. ``provider: auto`` is first placed as :func:`run` does.
    A ``checkpoints`` location in use is refused as by :func:`run` (unless ``force``).
    """
    from cloudbridge.backends import get_provider
    from cloudbridge.checkpoint_guard import check_checkpoints_free

    spec = _load_spec(spec_or_path)
    if provider:
        spec = spec.with_provider(provider)
    if spec.provider == "auto":
        from cloudbridge.planner.placement import resolve_auto

        spec = resolve_auto(spec)
    compute = get_provider(spec.provider, profile=profile, overrides=spec.overrides.get(spec.provider)).compute
    try:
        compute.validate(spec)
    except UserError as exc:
        located = _locate(spec, exc)
        if located is None:
            raise
        raise located from exc
    check_checkpoints_free(spec, force=force)
    return spec


_FIELD_PREFIX = re.compile(
    r"^((?:resources|inputs|outputs|checkpoints|env|image|distribution|run)[\w.\-]*): (.*)$", re.S
)


def _locate(spec: JobSpec, exc: UserError) -> InvalidSpec | None:
    """``exc`` about a spec field, given the spec file and the field's line when the provider could not
    (it sees the spec, not its file): ``job.yaml:5: resources.accelerators: unknown accelerator 'A10'``."""
    from cloudbridge.specs import spec_error

    if not spec.source:
        return None
    if isinstance(exc, InvalidSpec):
        if exc.source or not exc.field or exc.field.startswith("settings."):
            return None
        return spec_error(spec, exc.field, exc.message, hint=exc.hint)
    match = _FIELD_PREFIX.match(exc.message)
    return spec_error(spec, match.group(1), match.group(2), hint=exc.hint) if match else None


def budget_estimate(spec_or_path: JobSpec | dict[str, Any] | str | os.PathLike[str],
                    provider: str | None = None) -> CostEstimate:
    """The cost estimate shown before submit; :class:`~cloudbridge.errors.BudgetExceeded` when over
    budget (see :func:`cloudbridge.budgets.budget_estimate`)."""
    from cloudbridge.budgets import budget_estimate as estimate

    return estimate(_load_spec(spec_or_path), provider)


def _provider_of(job_id: str) -> str:
    stored = _store().find(job_id)
    if stored is not None:
        return stored.provider
    if "-" not in job_id:
        raise NotFound(f"no job with id {job_id!r}", hint="job ids look like local-1a2b3c4d; see: cloudbridge jobs")
    return job_id.split("-", 1)[0]


def _usable_overrides(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """Stored per-job overrides minus the secrets the store redacted.

    Secrets are never stored, so a redacted value must not be handed back to a provider as if it
    were a credential: it is dropped and the provider falls back to the profile or environment.
    """
    if not stored:
        return stored
    from cloudbridge.redaction import REDACTED

    return {key: value for key, value in stored.items() if value != REDACTED}


def _compute_for(job_id: str, profile: str | None = None) -> Compute:
    from cloudbridge.backends import get_provider
    from cloudbridge.errors import ProviderNotFound

    name = _provider_of(job_id)
    stored_spec = _store().spec(job_id) or {}
    overrides = _usable_overrides((stored_spec.get("overrides") or {}).get(name))
    try:
        return get_provider(name, profile=profile, overrides=overrides).compute
    except ProviderNotFound:
        if _store().find(job_id) is None:
            raise NotFound(f"no job with id {job_id!r}", hint="see: cloudbridge jobs") from None
        raise


def get_job(job_id: str, *, profile: str | None = None) -> Job:
    """The job's current state from its provider (recorded in the store); :class:`NotFound` if unknown.

    ``reason``, ``detail`` and ``attempts`` are the provider's; ``extra["events"]`` is the job's
    state-change history (restarts included), as for local jobs.
    """
    recorded = _store().find(job_id) if profile is None else None
    if recorded is not None and recorded.provider == "local" and recorded.state.is_terminal:
        # what the local backend would answer, without building it (a finished local job no longer changes)
        recorded.extra["events"] = _store().events(job_id)
        return recorded.bind(_DeferredCompute(job_id))
    compute = _compute_for(job_id, profile)
    job = compute.get(job_id)
    _record(job, compute)
    if not getattr(compute, "records_jobs", False):
        job.extra["events"] = _store().events(job_id)
    return job.bind(compute)


class _DeferredCompute(Compute):
    """A :class:`Compute` that builds its provider only when a job handle is first used."""

    def __init__(self, job_id: str) -> None:
        self._job_id = job_id
        self._real: Compute | None = None

    def _target(self) -> Compute:
        if self._real is None:
            self._real = _compute_for(self._job_id)
        return self._real

    def submit(self, spec: JobSpec) -> Job:
        """Submit through the real provider."""
        return self._target().submit(spec)

    def get(self, job_id: str) -> Job:
        """The job's state, recorded in the store."""
        return _record(self._target().get(job_id), self._target())

    def list(self) -> list[Job]:
        """The provider's jobs."""
        return self._target().list()

    def cancel(self, job_id: str) -> Job:
        """Cancel through the real provider."""
        return _record(self._target().cancel(job_id), self._target())

    def logs(self, job_id: str, follow: bool = False, timeout: float | None = None) -> Iterator[str]:
        """Logs from the real provider (``timeout`` bounds a follow, see :func:`logs`)."""
        return _logs_of(self._target(), job_id, follow, timeout)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Wait through the real provider."""
        return _record(self._target().wait(job_id, timeout=timeout), self._target())


def jobs(provider: str | None = None) -> list[Job]:
    """Recorded jobs of every provider (or one), newest first, read from the job store.

    Local jobs are checked against their supervisors first (a crashed one shows as ``FAILED``);
    cloud jobs show their last known state -- ``get_job(id)`` asks the cloud. An unknown
    ``provider`` raises :class:`~cloudbridge.errors.ProviderNotFound` naming the known ones.
    """
    if provider is not None:
        from cloudbridge.plugins import provider_info

        provider_info(provider)
    from cloudbridge.errors import CloudbridgeError
    from cloudbridge.records import JobState

    live = [state for state in JobState if not state.is_terminal]
    if provider in (None, "local") and _store().list("local", states=live, limit=1):
        try:
            from cloudbridge.backends import get_provider

            get_provider("local").compute.list()  # judges local supervisors honestly
        except CloudbridgeError as exc:
            # a misconfigured local backend must not hide the records: list them, but say why they
            # may be stale (a bug -- any other exception -- is not swallowed)
            import logging

            logging.getLogger("cloudbridge.sdk").warning("local jobs not checked against their supervisors: %s", exc)
    return [job.bind(_DeferredCompute(job.id)) for job in _store().list(provider)]


def cancel(job_id: str) -> Job:
    """Stop the job and return its record (a finished job is returned unchanged)."""
    compute = _compute_for(job_id)
    job = compute.cancel(job_id)
    _record(job, compute)
    return job.bind(compute)


def logs(job_id: str, follow: bool = False, timeout: float | None = None, since: float | None = None) -> Iterator[str]:
    """The job's log lines; ``follow=True`` streams until the job ends.

    With ``timeout`` seconds a follow stops there with :class:`~cloudbridge.errors.StageTimeout`
    (stage ``log follow``, naming the job's state); the job itself keeps running.
    ``since`` (unix time): only lines that arrived then or later -- for providers that record when
    each line arrived (local); others raise :class:`~cloudbridge.errors.UserError`.
    """
    return _logs_of(_compute_for(job_id), job_id, follow, timeout, since)


def _logs_of(
    compute: Compute, job_id: str, follow: bool, timeout: float | None, since: float | None = None
) -> Iterator[str]:
    import inspect

    extra: dict[str, Any] = {}
    if since is not None:
        if "since" not in inspect.signature(compute.logs).parameters:
            from cloudbridge.errors import UserError

            raise UserError(f"job {job_id}: its provider does not record when log lines arrived, so they "
                            "cannot be filtered by time (local jobs can)")
        extra["since"] = since
    if not follow or timeout is None:
        return compute.logs(job_id, follow=follow, **extra)
    if "timeout" in inspect.signature(compute.logs).parameters:  # the provider bounds its own follow
        return compute.logs(job_id, follow=True, timeout=timeout, **extra)  # type: ignore[call-arg]
    from cloudbridge.log_follow import follow_with_timeout

    return follow_with_timeout(compute, job_id, timeout, **extra)


def deploy(
    model_dir_or_spec: EndpointSpec | dict[str, Any] | str | os.PathLike[str],
    name: str | None = None,
    provider: str | None = None,
    **fields: Any,
) -> Endpoint:
    """Deploy a model: an :class:`EndpointSpec`, a dict, an endpoint YAML file, or a model folder/URI.

    For a model folder or URI, ``name`` is required and ``fields`` (``task``, ``instance_type``,
    ``port``...) fill the rest of the spec. ``provider`` overrides the spec's.
    """
    from cloudbridge.specs import EndpointSpec, load_endpoint_spec

    if isinstance(model_dir_or_spec, EndpointSpec):
        spec = model_dir_or_spec
    elif isinstance(model_dir_or_spec, dict):
        spec = _endpoint_from_dict(model_dir_or_spec)
    else:
        text = os.fspath(model_dir_or_spec)
        if text.endswith((".yaml", ".yml")) and Path(text).is_file():
            spec = load_endpoint_spec(text)
        else:
            if not name:
                raise InvalidSpec("cb.deploy(model) needs name=... for the endpoint", field="name")
            spec = _endpoint_from_dict({"name": name, "model": text, "provider": provider or "local", **fields})
    if provider:
        spec = spec.model_copy(update={"provider": provider})
    from cloudbridge.backends import get_provider

    api = get_provider(spec.provider, overrides=spec.overrides.get(spec.provider)).deploy
    return api.deploy(spec).bind(api)


def endpoints(provider: str = "local", *, profile: str | None = None) -> list[Endpoint]:
    """The endpoints of ``provider`` (default ``local``, like ``cloudbridge endpoints``), each bound to it:
    ``ep.invoke(payload)``, ``ep.delete()``, ``ep.refresh()``."""
    from cloudbridge.backends import get_provider

    api = get_provider(provider, profile=profile).deploy
    return [endpoint.bind(api) for endpoint in api.list()]


def _endpoint_from_dict(data: dict[str, Any]) -> EndpointSpec:
    from pydantic import ValidationError

    from cloudbridge.spec_loading import validation_to_invalid_spec
    from cloudbridge.specs import EndpointSpec

    try:
        return EndpointSpec.model_validate(data)
    except ValidationError as exc:
        raise validation_to_invalid_spec(exc, EndpointSpec) from exc
