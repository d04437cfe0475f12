"""The provider interfaces: everything a plugin author implements.

A provider is one :class:`Provider` subclass exposing up to three capabilities:

* :class:`Storage` -- objects addressed by URI. A backend implements five primitives
  (:meth:`Storage.stat`, :meth:`Storage.list`, :meth:`Storage.open_read`,
  :meth:`Storage.write_stream`, :meth:`Storage.delete`); everything else (``read_bytes``,
  ``write_bytes``, ``upload``, ``download``, ``exists``, ``du``) is derived, and a backend overrides
  ``upload``/``download`` only to use a faster native path (e.g. multipart transfers). The optional
  :meth:`Storage.abort_incomplete` (default: a no-op) cleans up interrupted multipart uploads.
* :class:`Compute` -- jobs from a :class:`~cloudbridge.specs.JobSpec`.
* :class:`Deploy` -- endpoints from an :class:`~cloudbridge.specs.EndpointSpec`.

Rules every implementation follows (the conformance suite :mod:`cloudbridge.testing` checks them):

* every failure is a :mod:`cloudbridge.errors` type raised ``from`` the SDK's exception;
* keys that escape their prefix are refused (:func:`cloudbridge.uri.safe_key`);
* a written object is never visible under its final key until it is complete;
* heavy SDKs are imported inside the methods that need them, never at module import;
* secrets never appear in reprs, logs, errors or job records.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from cloudbridge.errors import CapabilityNotSupported, NotFound, StageTimeout
from cloudbridge.records import CheckItem, CheckReport, Endpoint, Job, JobState, ObjectInfo
from cloudbridge.uri import StorageURI, parse_uri

if TYPE_CHECKING:
    from cloudbridge.specs import EndpointSpec, JobSpec

__all__ = [
    "PARTIAL_PREFIX",
    "CheckItem",
    "CheckReport",
    "Compute",
    "Deploy",
    "Endpoint",
    "Job",
    "JobState",
    "ObjectInfo",
    "Provider",
    "Storage",
    "URILike",
]

URILike = str | os.PathLike[str] | StorageURI
#: Name prefix of in-progress local temp files (a download or copy being written): never listed, never
#: a final key. Shared by the local backend's storage and the transfer engine.
PARTIAL_PREFIX = ".cb-partial-"
COPY_CHUNK = 8 * 1024 * 1024


def as_uri(uri: URILike) -> StorageURI:
    """Parse ``uri`` unless it is already a :class:`StorageURI`."""
    return uri if isinstance(uri, StorageURI) else parse_uri(uri)


class Storage(ABC):
    """Object storage addressed by URIs of the schemes its provider declares.

    Implement the five abstract primitives; override the derived methods only for speed.
    """

    #: URI schemes this storage serves, e.g. ``("s3",)``.
    schemes: tuple[str, ...] = ()

    # ---- primitives -------------------------------------------------------------------------
    @abstractmethod
    def stat(self, uri: URILike) -> ObjectInfo:
        """Size, mtime and etag/checksum of one object; :class:`NotFound` when absent."""

    @abstractmethod
    def list(self, uri: URILike, recursive: bool = True) -> Iterator[ObjectInfo]:
        """Objects under the prefix ``uri`` (sorted by key); ``key`` is relative to that prefix.

        With ``recursive=False`` only direct children are returned. A missing prefix yields nothing.
        """

    @abstractmethod
    def open_read(self, uri: URILike) -> IO[bytes]:
        """A binary stream of the object's bytes; :class:`NotFound` when absent."""

    @abstractmethod
    def write_stream(self, uri: URILike, stream: IO[bytes], size: int | None = None) -> ObjectInfo:
        """Store everything read from ``stream`` at ``uri`` atomically; return the new object's info."""

    @abstractmethod
    def delete(self, uri: URILike) -> None:
        """Delete one object; deleting a missing object is not an error."""

    # ---- derived ----------------------------------------------------------------------------
    def exists(self, uri: URILike) -> bool:
        """True when an object exists at ``uri``."""
        try:
            self.stat(uri)
        except NotFound:
            return False
        return True

    def read_bytes(self, uri: URILike) -> bytes:
        """The whole object (use :meth:`open_read` for large ones)."""
        with self.open_read(uri) as stream:
            return stream.read()

    def write_bytes(self, uri: URILike, data: bytes) -> ObjectInfo:
        """Store ``data`` at ``uri`` atomically."""
        import io

        return self.write_stream(uri, io.BytesIO(data), size=len(data))

    def upload(self, local_path: str | os.PathLike[str], uri: URILike) -> ObjectInfo:
        """Copy one local file to ``uri`` (streamed, never whole in memory)."""
        path = os.fspath(local_path)
        if not os.path.isfile(path):
            raise NotFound(f"no such local file: {path}")
        with open(path, "rb") as stream:
            return self.write_stream(uri, stream, size=os.path.getsize(path))

    def download(self, uri: URILike, local_path: str | os.PathLike[str]) -> None:
        """Copy one object to a local file; the file appears only once complete."""
        target = os.fspath(local_path)
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".cb-partial-", dir=os.path.dirname(os.path.abspath(target)))
        try:
            with os.fdopen(fd, "wb") as out, self.open_read(uri) as src:
                shutil.copyfileobj(src, out, COPY_CHUNK)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def du(self, uri: URILike) -> tuple[int, int]:
        """``(object count, total bytes)`` under the prefix ``uri``."""
        count = total = 0
        for info in self.list(uri, recursive=True):
            count += 1
            total += info.size
        return count, total

    def abort_incomplete(self, uri: URILike, older_than_s: float = 3600.0) -> int:
        """Optional: discard unfinished writes under the prefix ``uri`` started over ``older_than_s`` s ago.

        An interrupted multipart upload (a process killed mid-transfer) is invisible to
        :meth:`list` but keeps its parts stored -- and billed -- until aborted. Backends with such
        hidden state override this to abort them and return how many they discarded;
        :func:`cloudbridge.transfers.sync` calls it on a remote destination prefix before copying.
        The age limit spares uploads another process may still be running. The default does
        nothing and returns 0, which is right for storages whose interrupted writes leave nothing.
        """
        return 0


class Compute(ABC):
    """Runs jobs. ``id`` arguments are cloudbridge job ids as returned by :meth:`submit`."""

    #: Seconds between polls in the default :meth:`wait`.
    poll_interval: float = 1.0

    @abstractmethod
    def submit(self, spec: JobSpec) -> Job:
        """Start (or queue) a job and return its record; the job runs detached from the caller."""

    def validate(self, spec: JobSpec) -> object:
        """Optional: make every check :meth:`submit` makes, creating nothing (``cloudbridge run --dry-run``).

        Raise what submit would raise for the same spec (:class:`~cloudbridge.errors.InvalidSpec`,
        :class:`~cloudbridge.errors.ResourceUnavailable`, :class:`~cloudbridge.errors.BudgetExceeded`),
        so that a dry-run that passes predicts an accepted submit. The default checks nothing.
        """
        return None

    @abstractmethod
    def get(self, job_id: str) -> Job:
        """The job's current record; :class:`NotFound` for an unknown id."""

    @abstractmethod
    def list(self) -> list[Job]:
        """This provider's jobs, newest first."""

    @abstractmethod
    def cancel(self, job_id: str) -> Job:
        """Stop the job (no-op when it already ended) and return its record."""

    @abstractmethod
    def logs(self, job_id: str, follow: bool = False) -> Iterator[str]:
        """The job's log lines (without newlines); ``follow=True`` streams until the job ends."""

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Poll until the job is terminal; :class:`StageTimeout` (stage ``wait``) after ``timeout`` s."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job.state.is_terminal:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise StageTimeout(f"job {job_id} still {job.state} after {timeout:g}s", stage="wait")
            time.sleep(self.poll_interval)


class Deploy(ABC):
    """Serves models behind endpoints that speak SageMaker's container contract."""

    @abstractmethod
    def deploy(self, spec: EndpointSpec) -> Endpoint:
        """Create the endpoint and return it once it is ready to serve."""

    @abstractmethod
    def get(self, name: str) -> Endpoint:
        """One endpoint; :class:`NotFound` when absent."""

    @abstractmethod
    def list(self) -> list[Endpoint]:
        """This provider's endpoints."""

    @abstractmethod
    def invoke(self, name: str, payload: Any) -> Any:
        """Send ``payload`` (JSON-ready) to the endpoint and return the decoded JSON reply."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove the endpoint and everything created for it; :class:`NotFound` when absent."""


class Provider(ABC):  # noqa: B024 - abstract by intent; every capability has a default
    """One cloud (or the local machine): settings plus the capabilities it offers.

    Construct it with its settings object (the model named by ``ProviderInfo.settings``).
    Capability properties raise :class:`CapabilityNotSupported` when not offered.
    """

    name: str = "unnamed"

    def __init__(self, settings: Any = None) -> None:
        self.settings = settings

    @property
    def storage(self) -> Storage:
        """The provider's :class:`Storage`."""
        raise CapabilityNotSupported(f"provider {self.name!r} offers no storage")

    @property
    def compute(self) -> Compute:
        """The provider's :class:`Compute`."""
        raise CapabilityNotSupported(f"provider {self.name!r} offers no compute")

    @property
    def deploy(self) -> Deploy:
        """The provider's :class:`Deploy`."""
        raise CapabilityNotSupported(f"provider {self.name!r} offers no deployment")

    def resources(self) -> list[dict[str, Any]]:
        """Optional: the machines this provider owns, as they are now (an on-premise cluster's partitions).

        One dict per group of alike nodes with at least ``partition``, ``nodes``, ``usable``,
        ``gpu_type``, ``gpus_per_node``, ``cpus``, ``memory_gb`` and ``state``; read by
        ``cloudbridge resources --provider NAME`` and by ``plan --pool`` resources with ``probe: true``.
        Clouds sell from the planner catalog instead and raise :class:`CapabilityNotSupported`.
        """
        raise CapabilityNotSupported(
            f"provider {self.name!r} has no machines of its own to list; its offerings are in `cloudbridge catalog`"
        )

    def check(self) -> CheckReport:
        """Verify credentials and configuration; each failed item says how to fix it."""
        report = CheckReport(self.name)
        report.add("provider loads", True, f"{type(self).__module__}.{type(self).__qualname__}")
        return report

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def wait_for_state(compute: Compute, job_id: str, states: set[JobState], timeout: float) -> Job:
    """Poll ``compute`` until the job reaches one of ``states`` or ends; used by tests and the CLI."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        job = compute.get(job_id)
        if job.state in states or job.state.is_terminal:
            return job
        if time.monotonic() >= deadline:
            raise StageTimeout(f"job {job_id} did not reach {sorted(states)} in {timeout:g}s", stage="wait")
        time.sleep(0.1)
