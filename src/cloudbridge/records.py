"""Plain records passed across the interfaces: jobs, objects, endpoints, check reports.

These are dataclasses (no pydantic) so that reading them is cheap. Plugins import them through
:mod:`cloudbridge.interfaces`, which re-exports every name here.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudbridge.interfaces import Compute, Deploy
    from cloudbridge.metrics import MetricHistory

__all__ = ["CheckItem", "CheckReport", "Endpoint", "Job", "JobState", "ObjectInfo"]


class JobState(str, enum.Enum):
    """The provider-neutral life cycle of a job. Each provider maps its own states onto these."""

    PENDING = "PENDING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        """True once the job can no longer change state."""
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)

    def __str__(self) -> str:
        return self.value


@dataclass
class Job:
    """A job as its provider last reported it, and a handle to act on it.

    ``id`` is cloudbridge's own id (``<provider>-<hex>``); ``native_id`` the provider's (a
    SageMaker job name, a PID group, a Vertex resource name). ``reason`` is a short,
    provider-neutral sentence when the job failed; ``detail`` the provider's own message.
    ``metrics`` holds the latest values (for a running local job, read live from its series);
    :meth:`metric_history` the whole series.
    """

    id: str
    provider: str
    name: str
    state: JobState
    native_id: str | None = None
    outputs_uri: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    detail: str | None = None
    exit_code: int | None = None
    created_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    _compute: Compute | None = field(default=None, repr=False, compare=False)

    def bind(self, compute: Compute) -> Job:
        """Attach the :class:`Compute` that can act on this job; returns ``self``."""
        self._compute = compute
        return self

    def _require_compute(self) -> Compute:
        if self._compute is None:
            from cloudbridge.errors import CloudbridgeError

            raise CloudbridgeError(f"job {self.id} is a detached record; use cb.get_job({self.id!r})")
        return self._compute

    def refresh(self) -> Job:
        """Fetch the current state from the provider and update this object in place."""
        fresh = self._require_compute().get(self.id)
        for name in self.to_dict():
            setattr(self, name, getattr(fresh, name))
        return self

    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job ends (or ``timeout`` seconds pass: :class:`~cloudbridge.errors.StageTimeout`)."""
        fresh = self._require_compute().wait(self.id, timeout=timeout)
        for name in self.to_dict():
            setattr(self, name, getattr(fresh, name))
        return self

    def logs(self, follow: bool = False) -> Iterator[str]:
        """Iterate over the job's log lines; ``follow=True`` keeps reading until the job ends."""
        return self._require_compute().logs(self.id, follow=follow)

    def cancel(self) -> Job:
        """Ask the provider to stop the job; returns the updated record."""
        return self._require_compute().cancel(self.id)

    def metric_history(self) -> MetricHistory:
        """The metric series the job recorded with :func:`cloudbridge.runtime.log_metrics`.

        Read from the local job folder (also while the job runs) or from the job's outputs in
        storage (downloaded once the job has ended). Empty when the job recorded none.
        """
        from cloudbridge.metrics import history_of

        return history_of(self)

    @property
    def done(self) -> bool:
        """True once the job reached a terminal state."""
        return self.state.is_terminal

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``--json`` form of ``cloudbridge status``)."""
        # Not asdict(self): it would deep-copy the bound Compute (SDK clients, sockets) too.
        data = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if not f.name.startswith("_")}
        data["state"] = self.state.value
        return data


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: its full URI, key relative to the listed prefix, size and identity."""

    uri: str
    key: str
    size: int
    mtime: float | None = None
    etag: str | None = None
    checksum: str | None = None


@dataclass
class Endpoint:
    """A deployed model endpoint, and a handle to use it: ``ep.invoke(payload)``, ``ep.delete()``.

    Endpoints returned by ``cb.deploy()`` and ``cb.endpoints()`` are bound to their provider's
    :class:`~cloudbridge.interfaces.Deploy`.
    """

    name: str
    provider: str
    state: str
    url: str | None = None
    model: str | None = None
    native_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _deploy: Deploy | None = field(default=None, repr=False, compare=False)

    def bind(self, deploy: Deploy) -> Endpoint:
        """Attach the :class:`Deploy` that serves this endpoint; returns ``self``."""
        self._deploy = deploy
        return self

    def _require_deploy(self) -> Deploy:
        if self._deploy is None:
            from cloudbridge.errors import CloudbridgeError

            raise CloudbridgeError(f"endpoint {self.name} is a detached record; use cb.endpoints({self.provider!r})")
        return self._deploy

    def invoke(self, payload: Any) -> Any:
        """Send ``payload`` (JSON-ready) to the endpoint and return the decoded JSON reply."""
        return self._require_deploy().invoke(self.name, payload)

    def delete(self) -> None:
        """Remove the endpoint and everything created for it."""
        self._require_deploy().delete(self.name)

    def refresh(self) -> Endpoint:
        """Fetch the endpoint's current state from its provider and update this object in place."""
        fresh = self._require_deploy().get(self.name)
        for name in self.to_dict():
            setattr(self, name, getattr(fresh, name))
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if not f.name.startswith("_")}


@dataclass(frozen=True)
class CheckItem:
    """One line of ``cloudbridge check``: what was checked, whether it passed, how to fix it."""

    name: str
    ok: bool
    detail: str = ""
    fix: str | None = None


@dataclass
class CheckReport:
    """The result of :meth:`Provider.check`."""

    provider: str
    items: list[CheckItem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every item passed."""
        return all(item.ok for item in self.items)

    def add(self, name: str, ok: bool, detail: str = "", fix: str | None = None) -> None:
        """Append one check result."""
        self.items.append(CheckItem(name, ok, detail, fix))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"provider": self.provider, "ok": self.ok, "items": [asdict(i) for i in self.items]}
