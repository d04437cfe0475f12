"""The contract between the managed-job core and a cloud plugin: :class:`ManagedAdapter`.

A managed training service (SageMaker, Vertex AI, Azure ML...) is added to cloudbridge by writing
one :class:`ManagedAdapter` subclass -- a translator -- and handing it to
:class:`~cloudbridge.managed.compute.ManagedCompute` with the plugin's
:class:`~cloudbridge.interfaces.Storage`::

    class VertexCompute(ManagedCompute):
        def __init__(self, session, storage):
            super().__init__(VertexAdapter(session), storage)

The core owns every policy (placement and estimate, budget, limits, upload, ``start_timeout``,
restarts, failure reasons, log tail, events). The adapter only answers questions and makes calls:

====================  ===========================================================================
pure (no cloud call)  :meth:`~ManagedAdapter.place`, :meth:`~ManagedAdapter.new_name`,
                      :meth:`~ManagedAdapter.build_request`, :meth:`~ManagedAdapter.restart_request`,
                      :meth:`~ManagedAdapter.failure_reason`, :meth:`~ManagedAdapter.explain`
cloud calls           :meth:`~ManagedAdapter.create`, :meth:`~ManagedAdapter.describe`,
                      :meth:`~ManagedAdapter.stop`, :meth:`~ManagedAdapter.read_logs`,
                      :meth:`~ManagedAdapter.list_jobs`, and where the service needs them
                      :meth:`~ManagedAdapter.read_tags`, :meth:`~ManagedAdapter.add_tags`,
                      :meth:`~ManagedAdapter.find_restarts`, :meth:`~ManagedAdapter.request_of`
====================  ===========================================================================

Every cloud call raises :mod:`cloudbridge.errors` types ``from`` the SDK error (``NotFound`` for an
unknown job, ``ConflictError`` when a name is taken, ``StageTimeout``/``TransientError``...).

Tags: the core stores a few ``cloudbridge:*`` tags on every job (see :mod:`cloudbridge.managed.limits`:
``JOB_ID_TAG``, ``NAME_TAG``, ``LIMITS_TAG``, ``STOPPED_BY_TAG``, ``ATTEMPT_TAG``, ``RESTART_OF_TAG``).
They are handed to :meth:`~ManagedAdapter.build_request` as a plain ``dict[str, str]``; an adapter
whose service restricts label keys or values (GCP labels: ``[a-z0-9_-]``, 63 chars) encodes them
there and decodes them again in :attr:`Snapshot.tags` / :meth:`~ManagedAdapter.read_tags`, so the core
only ever sees the original keys and values.
"""

from __future__ import annotations

import re
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from cloudbridge.errors import CloudbridgeError, NotFound, StageTimeout, TransientError
from cloudbridge.records import JobState

if TYPE_CHECKING:
    from cloudbridge.interfaces import Storage
    from cloudbridge.managed.limits import Limits
    from cloudbridge.specs import JobSpec

__all__ = ["CHECK_CODE_URI", "NAME_SUFFIX_RE", "Cause", "LimitStop", "ManagedAdapter", "Placement", "Snapshot",
           "classify_failure", "lookup_state", "name_suffix", "restart_name", "restart_number"]

#: The ``code_uri`` :meth:`ManagedAdapter.build_request` receives when the core only validates a spec
#: (``cloudbridge run --dry-run``, :meth:`~cloudbridge.managed.compute.ManagedCompute.validate`).
CHECK_CODE_URI = "check://code-package"

#: Which limit of its own the service applied to end a job (see :attr:`Snapshot.limit_stop`).
LimitStop = Literal["runtime", "spot_wait"]
#: What :meth:`ManagedAdapter.explain` is asked to explain.
Cause = Literal["start_timeout", "spot_reclaimed", "no_spot_capacity", "budget", "max_runtime", "failed"]


@dataclass(frozen=True)
class Placement:
    """Where one job runs: what :meth:`ManagedAdapter.place` decided, priced by the core.

    ``instance_type`` is the service's machine type for one node (``ml.g5.xlarge``,
    ``a2-highgpu-1g``, ``Standard_NC6s_v3``); ``hourly`` the planner catalog's estimated USD per
    hour for all ``nodes`` (``None`` when the catalog has no price; filled in by the core).
    """

    instance_type: str
    region: str | None
    nodes: int = 1
    spot: bool = False
    hourly: float | None = None


@dataclass
class Snapshot:
    """One provider job (one attempt) as :meth:`ManagedAdapter.describe` read it, in neutral terms.

    Fields the adapter fills from the service's reply:

    * ``native_id`` -- the service's job name or id (what ``describe``/``stop`` take);
    * ``status`` / ``stage`` -- the service's primary state and its secondary stage (SageMaker
      ``TrainingJobStatus`` / ``SecondaryStatus``; Vertex ``state`` and ``None``), mapped to a
      :class:`JobState` through :attr:`ManagedAdapter.states`;
    * ``message`` -- the service's failure message (``None`` when it gave none);
    * ``created_at`` / ``started_at`` (user code started) / ``ended_at`` / ``modified_at`` -- epoch
      seconds or ``None``;
    * ``tags`` -- the tags or labels the core stored (decoded), or ``None`` when ``describe`` does not
      return them (the core then calls :meth:`ManagedAdapter.read_tags` when it needs them);
    * ``provisioning`` -- True while the service is still getting machines ready and the user's
      code has never run (``start_timeout`` applies only then);
    * ``stopped`` -- True when the job is stopping or stopped because someone asked
      (:meth:`ManagedAdapter.stop`), not because the service applied one of its own limits;
    * ``limit_stop`` -- ``"runtime"`` when the service ended the job at its run-time cap,
      ``"spot_wait"`` when it gave up waiting for spot capacity, else ``None``;
    * ``runtime_cap`` -- the run-time cap in seconds the job was created with (``None`` if unknown);
    * ``used_seconds`` -- run time this attempt consumed (what the budget is charged);
    * ``interruptions`` -- how many times spot capacity was reclaimed inside this attempt;
    * ``name`` -- the spec name when it can be read off the native id (fallback for ``Job.name``);
    * ``outputs_uri``, ``metrics`` -- copied onto the :class:`~cloudbridge.records.Job`;
    * ``extra`` -- provider-specific facts copied into ``Job.extra`` (``sagemaker_status``...);
    * ``ref`` -- anything the adapter needs to act on this job again (an ARN, a resource name).
    """

    native_id: str
    status: str
    stage: str | None = None
    message: str | None = None
    created_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    modified_at: float | None = None
    tags: dict[str, str] | None = None
    provisioning: bool = False
    stopped: bool = False
    limit_stop: LimitStop | None = None
    runtime_cap: int | None = None
    used_seconds: float = 0.0
    interruptions: int = 0
    name: str | None = None
    outputs_uri: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    ref: Any = None


#: The ``-YYYYmmdd-HHMMSS-xxxx`` suffix of native names made with :func:`name_suffix`.
NAME_SUFFIX_RE = re.compile(r"-\d{8}-\d{6}-[0-9a-f]{4}$")


def name_suffix() -> str:
    """``YYYYmmdd-HHMMSS-xxxx`` (UTC, 4 random hex digits): what makes a native name unique."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def restart_name(original: str, number: int) -> str:
    """The native name of restart ``number`` (1-based) of ``original``: ``<original>-r<number>``."""
    return f"{original}-r{number}"


def restart_number(original: str, name: str) -> int | None:
    """``3`` for ``<original>-r3``; ``None`` for any other name."""
    match = re.fullmatch(re.escape(original) + r"-r(\d+)", name)
    return int(match.group(1)) if match else None


_EXIT_CODE = re.compile(r"exit(?:ed with)?(?: non-zero)? code[: ]+(\d+)", re.IGNORECASE)


def classify_failure(message: str | None, rules: Sequence[tuple[re.Pattern[str], str]]) -> str | None:
    """The first neutral reason whose pattern matches ``message`` (``"failed"`` when none; ``None`` if empty).

    A ``non-zero exit`` names its code when the message does (``non-zero exit (code 1)``).
    """
    from cloudbridge.reasons import FAILED, NON_ZERO_EXIT

    if not message:
        return None
    for pattern, reason in rules:
        if pattern.search(message):
            if reason == NON_ZERO_EXIT:
                code = _EXIT_CODE.search(message)
                return f"{NON_ZERO_EXIT} (code {code.group(1)})" if code else NON_ZERO_EXIT
            return reason
    return FAILED


class ManagedAdapter(ABC):
    """A managed training service, translated. Subclass it once per cloud; see the module docstring.

    Class attributes:

    * ``provider`` -- the provider name; job ids are ``f"{provider}-{native_id}"``;
    * ``service`` -- the service's name in messages (``"SageMaker"``, ``"Vertex AI"``);
    * ``states`` -- the state table: keys are ``(status, stage)`` pairs or a bare ``status``; the
      pair wins. A status that is in neither maps to ``PENDING``;
    * ``reasons`` -- ordered ``(compiled regex, neutral reason)`` rules applied to a failure message
      (reasons from :mod:`cloudbridge.reasons`: ``OUT_OF_MEMORY``, ``QUOTA_EXCEEDED``...);
    * ``longest_runtime`` -- the longest run time the service accepts, in seconds (or ``None``);
    * ``spot_name`` -- what the service calls spot training (``"managed spot"``) in messages.

    Instance attributes ``poll_interval`` and ``catalog`` may be set per adapter object.
    """

    provider: ClassVar[str]
    service: ClassVar[str]
    states: ClassVar[Mapping[str | tuple[str, str], JobState]]
    reasons: ClassVar[Sequence[tuple[re.Pattern[str], str]]] = ()
    longest_runtime: ClassVar[int | None] = None
    spot_name: ClassVar[str] = "spot"
    #: Seconds between polls when following logs or waiting.
    poll_interval: float = 10.0
    #: The planner :class:`~cloudbridge.planner.catalog.Catalog` that prices placements (``None``: the
    #: installed one -- builtin rows, plugins' ``cloudbridge_register_catalog`` rows, ``CLOUDBRIDGE_CATALOG``).
    catalog: Any = None

    # ---- pure: no cloud call -------------------------------------------------------------------
    @abstractmethod
    def place(self, spec: JobSpec) -> Placement:
        """Choose the machine type and region for ``spec`` (``hourly`` left ``None``: the core prices it).

        Typical order: ``resources.instance_type`` (checked), a settings override per accelerator,
        then the planner's cheapest fit (:func:`cloudbridge.planner.placement.choose_instance`).
        Bad input is :class:`~cloudbridge.errors.InvalidSpec` naming the field.
        """

    def new_name(self, spec: JobSpec) -> str:
        """A fresh, legal native name for a new job of ``spec`` (no cloud call).

        Default: the spec name reduced to ``[A-Za-z0-9-]`` plus ``-YYYYmmdd-HHMMSS-xxxx``.
        """
        suffix = name_suffix()
        base = re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9-]+", "-", spec.name)).strip("-") or "job"
        return f"{base[:40].rstrip('-')}-{suffix}"

    def code_uri_prefix(self) -> str:
        """Where the core uploads the packed workdir (content-addressed): a storage URI prefix.

        Raise :class:`~cloudbridge.errors.InvalidSpec` naming the setting when none is configured.
        """
        raise NotImplementedError(f"{type(self).__name__}.code_uri_prefix")

    @abstractmethod
    def build_request(self, spec: JobSpec, placement: Placement, limits: Limits, *, code_uri: str, name: str,
                      tags: dict[str, str]) -> Any:
        """The service's create request for ``spec``: a pure function of its arguments.

        ``code_uri`` is the uploaded workdir package (:data:`CHECK_CODE_URI` when only validating),
        ``name`` the native name from :meth:`new_name`, ``tags`` what the request must store as
        tags/labels (encode them here if the service restricts them). Put ``limits.run_cap()`` in
        the service's run-time cap and, for spot, ``limits.spot_wait(longest=...)`` where the service
        has a wait. Bad input is :class:`~cloudbridge.errors.InvalidSpec` naming the field.
        """

    @abstractmethod
    def restart_request(self, base: Any, number: int, limits: Limits, used: float) -> Any:
        """``base`` (the first attempt's request) as restart ``number`` (1 = first restart).

        Give it a new native name that :meth:`find_restarts` will find, the run-time cap left after
        ``used`` seconds (``limits.for_attempt(used)``), and the tags ``LIMITS_TAG`` (the attempt's
        limits), ``ATTEMPT_TAG`` (``number + 1``) and ``RESTART_OF_TAG`` (the first native id).
        Keep image, inputs, environment and checkpoint location: the program resumes from them.
        """

    def failure_reason(self, snapshot: Snapshot) -> str | None:
        """The neutral reason of a failed job from its message (default: :attr:`reasons` rules)."""
        return classify_failure(snapshot.message, self.reasons)

    def explain(self, snapshot: Snapshot, cause: Cause, limits: Limits) -> str:
        """The ``Job.detail`` sentence for ``cause`` (override to use the service's own terms)."""
        from cloudbridge.reasons import fmt_duration

        where = f"({snapshot.status}/{snapshot.stage})" if snapshot.stage else f"({snapshot.status})"
        if cause == "start_timeout":
            return (f"cloudbridge stopped {self.service} job {snapshot.native_id}: it had not started "
                    f"{fmt_duration(limits.start_timeout or 0)} after it was created {where}")
        if cause == "spot_reclaimed":
            return (f"spot capacity was reclaimed {snapshot.interruptions} time(s) and the job did not finish "
                    f"within its spot wait; {self.service} stopped it {where}")
        if cause == "no_spot_capacity":
            return f"no spot capacity was found within the spot wait; {self.service} stopped the job {where}"
        if cause == "budget":
            return (f"{self.service} stopped the job at its run-time cap of {snapshot.runtime_cap}s, the cap set "
                    f"by the budget: {limits.describe_budget()}")
        if cause == "max_runtime":
            return (f"{self.service} stopped the job at its run-time cap of {snapshot.runtime_cap}s {where}"
                    + (f": {snapshot.message}" if snapshot.message else ""))
        return snapshot.message or f"{self.service} reported {where[1:-1]} without a failure message"

    def warnings(self, spec: JobSpec) -> list[str]:
        """Lines shown after submit (e.g. secrets the service would store in plain text); default none."""
        return []

    def native_id_of(self, job_id: str) -> str:
        """``<provider>-<native id>`` -> the native id; anything else is :class:`~cloudbridge.errors.NotFound`."""
        prefix = f"{self.provider}-"
        if not job_id.startswith(prefix) or len(job_id) == len(prefix):
            raise NotFound(f"no {self.provider} job with id {job_id!r}",
                           hint=f"{self.provider} job ids look like {prefix}<{self.service} job name>")
        return job_id[len(prefix):]

    # ---- cloud calls ---------------------------------------------------------------------------
    def upload_support(self, storage: Storage) -> int:
        """Upload anything every job needs besides its code (a launcher...); returns bytes uploaded."""
        return 0

    @abstractmethod
    def create(self, request: Any) -> str:
        """Create the job; returns its native id. :class:`~cloudbridge.errors.ConflictError` if the name is taken.

        A call whose reply never came is :class:`~cloudbridge.errors.StageTimeout` (stage ``submit``)
        or :class:`~cloudbridge.errors.TransientError`; the core then looks for an orphan and stops it.
        """

    def may_have_created(self, error: CloudbridgeError) -> bool:
        """Whether a job may exist after :meth:`create` raised ``error`` (then the core looks and stops it).

        Default: a :class:`~cloudbridge.errors.StageTimeout` or :class:`~cloudbridge.errors.TransientError`
        (the reply was lost); a clear refusal (quota, bad request) created nothing.
        """
        return isinstance(error, (StageTimeout, TransientError))

    @abstractmethod
    def describe(self, native_id: str) -> Snapshot:
        """The job's :class:`Snapshot`; :class:`~cloudbridge.errors.NotFound` for an unknown id."""

    @abstractmethod
    def stop(self, native_id: str) -> None:
        """Ask the service to stop the job (it keeps what the job uploaded so far)."""

    @abstractmethod
    def read_logs(self, native_id: str, *, follow: bool = False, is_done: Callable[[], bool] | None = None,
                  poll_interval: float = 5.0, deadline: float | None = None) -> Iterator[str]:
        """The job's log lines. With ``follow``, poll every ``poll_interval`` s until ``is_done()``,
        then read once more; past ``deadline`` (``time.monotonic()``) raise ``StageTimeout`` (``log follow``)."""

    def tail_logs(self, native_id: str, lines: int) -> list[str]:
        """The job's last ``lines`` log lines (a failed job's detail). Default: read the whole log and keep
        the end; override to read only the end when the service can (CloudWatch, Cloud Logging can)."""
        from collections import deque

        return list(deque(self.read_logs(native_id), maxlen=lines))

    @abstractmethod
    def list_jobs(self) -> Iterable[Snapshot]:
        """cloudbridge's jobs on this service (first attempts only, not restarts), tags may be ``None``."""

    def read_tags(self, snapshot: Snapshot) -> dict[str, str]:
        """The job's tags (decoded). Default: ``snapshot.tags``; override when ``describe`` omits them."""
        return dict(snapshot.tags or {})

    def add_tags(self, snapshot: Snapshot, tags: dict[str, str]) -> None:
        """Add or replace tags on an existing job (the core marks jobs it stopped itself)."""
        raise NotImplementedError(f"{type(self).__name__}.add_tags")

    def find_restarts(self, original: str) -> list[str]:
        """Native ids of the restarts of ``original`` (made by :meth:`restart_request`), oldest first."""
        return []

    def request_of(self, first: Snapshot, tags: dict[str, str]) -> Any:
        """The create request behind ``first`` when another process submitted it (for restarts)."""
        raise NotImplementedError(f"{type(self).__name__}.request_of")


def lookup_state(table: Mapping[str | tuple[str, str], JobState], status: str, stage: str | None) -> JobState:
    """``table[(status, stage)]``, else ``table[status]``, else ``PENDING``."""
    if stage is not None and (status, stage) in table:
        return table[(status, stage)]
    return table.get(status, JobState.PENDING)
