"""Job folders on disk: ``<root>/jobs/<id>/`` with ``state.json``, ``spec.json`` and ``log.txt``.

Both the compute API (in the caller's process) and the detached runner update ``state.json``;
every update is a read-modify-write under an ``flock`` and lands with an atomic rename, and a
terminal state is never overwritten.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cloudbridge.errors import NotFound
from cloudbridge.records import Job, JobState

ID_RE = re.compile(r"^dirstore-[0-9a-f]{8}$")
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


def job_dir(root: Path, job_id: str) -> Path:
    """The folder of ``job_id``; :class:`NotFound` for ids that are malformed or unknown."""
    if not ID_RE.match(job_id):
        raise NotFound(f"no job with id {job_id!r} (dirstore ids look like dirstore-1a2b3c4d)")
    path = root / "jobs" / job_id
    if not (path / "state.json").exists():
        raise NotFound(f"no job with id {job_id!r}")
    return path


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold the job folder's lock."""
    with open(folder / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_state(folder: Path) -> dict[str, Any]:
    """The job's state record."""
    return json.loads((folder / "state.json").read_text(encoding="utf-8"))


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def update_state(folder: Path, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into the state; a terminal state stays as it is. Returns the new state."""
    with locked(folder):
        state = read_state(folder)
        if state["state"] in TERMINAL:
            return state
        state.update(fields)
        if fields.get("state") in TERMINAL and not state.get("ended_at"):
            state["ended_at"] = time.time()
        write_json(folder / "state.json", state)
        return state


def to_job(state: dict[str, Any]) -> Job:
    """A :class:`~cloudbridge.records.Job` from a state record."""
    return Job(
        id=state["id"],
        provider="dirstore",
        name=state["name"],
        state=JobState(state["state"]),
        native_id=state["id"],
        outputs_uri=state.get("outputs_uri"),
        reason=state.get("reason"),
        detail=state.get("detail"),
        exit_code=state.get("exit_code"),
        created_at=state.get("created_at"),
        started_at=state.get("started_at"),
        ended_at=state.get("ended_at"),
        extra={"folder": state.get("folder")},
    )


def pid_alive(pid: int | None) -> bool:
    """True when process ``pid`` exists (and is not a zombie we could reap)."""
    if not pid:
        return False
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
