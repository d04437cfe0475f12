"""Helpers for the local compute tests: a configured ``LocalCompute``, polling, process checks."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from cloudbridge.interfaces import Job, JobState
from cloudbridge.specs import JobSpec

T = TypeVar("T")


def local_compute(monkeypatch: pytest.MonkeyPatch, *, fake_gpus: str | None = None, **settings: Any) -> Any:
    """A fresh ``LocalCompute`` built through the provider registry, with ``CLOUDBRIDGE_LOCAL_*`` settings.

    ``fake_gpus`` sets the ``CLOUDBRIDGE_FAKE_GPUS`` test hook (``"2"`` or ``"2:24"``); supervisors
    inherit it, so queue and allocation behave as on a machine with that many GPUs.
    """
    from cloudbridge.backends import clear_provider_cache, get_provider

    settings.setdefault("kill_grace", 1)
    settings.setdefault("poll_interval", 0.05)
    settings.setdefault("heartbeat_interval", 0.5)
    for name, value in settings.items():
        monkeypatch.setenv(f"CLOUDBRIDGE_LOCAL_{name.upper()}", str(value))
    if fake_gpus is None:
        monkeypatch.setenv("CLOUDBRIDGE_FAKE_GPUS", "0")
    else:
        monkeypatch.setenv("CLOUDBRIDGE_FAKE_GPUS", fake_gpus)
    clear_provider_cache()
    return get_provider("local").compute


def spec(tmp_path: Path, run: str, name: str = "t", **fields: Any) -> JobSpec:
    """A job spec whose workdir is ``tmp_path``."""
    fields.setdefault("workdir", str(tmp_path))
    return JobSpec(name=name, run=run, **fields)


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)


def wait_state(compute: Any, job_id: str, *states: JobState, timeout: float = 30.0) -> Job:
    """Poll until the job is in one of ``states`` (failing fast if it ended in another)."""

    def check() -> Job | None:
        job = compute.get(job_id)
        if job.state in states:
            return job
        if job.state.is_terminal:
            pytest.fail(f"job {job_id} ended {job.state} ({job.reason}: {job.detail}) instead of {states}")
        return None

    return wait_until(check, timeout)


def run_info(job_id: str) -> Any:
    """The ``local_runs`` row of ``job_id``."""
    from cloudbridge.backends.local.compute_runs import run_info as info
    from cloudbridge.jobstore.store import JobStore

    return info(JobStore.default(), job_id)
