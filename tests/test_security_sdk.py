"""``sdk.jobs()`` no longer swallows every exception of the local backend (issue 12, item 10)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cloudbridge.jobstore.store import JobStore
from cloudbridge.records import Job, JobState


def _record_one() -> None:
    """One cloud job, and one live local job: the local supervisors are checked only when one is live."""
    store = JobStore.default()
    store.insert_job(Job(id="aws-x", provider="aws", name="x", state=JobState.RUNNING), {"name": "x"})
    store.insert_job(Job(id="local-y", provider="local", name="y", state=JobState.RUNNING), {"name": "y"})


def test_a_misconfigured_local_backend_is_reported_not_hidden(
    monkeypatch: pytest.MonkeyPatch, cb_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import cloudbridge.sdk as sdk
    from cloudbridge.backends import clear_provider_cache

    _record_one()
    monkeypatch.setenv("CLOUDBRIDGE_LOCAL_HEARTBEAT_INTERVAL", "not-a-number")
    clear_provider_cache()
    with caplog.at_level(logging.WARNING, logger="cloudbridge.sdk"):
        assert sorted(j.id for j in sdk.jobs()) == ["aws-x", "local-y"]
    assert "local jobs not checked" in caplog.text and "heartbeat_interval" in caplog.text


def test_a_bug_in_the_local_backend_is_not_swallowed(monkeypatch: pytest.MonkeyPatch, cb_home: Path) -> None:
    import cloudbridge.sdk as sdk
    from cloudbridge.backends.local.compute import LocalCompute

    _record_one()

    def broken(self: LocalCompute) -> list[Job]:
        raise RuntimeError("a bug in the local backend")

    monkeypatch.setattr(LocalCompute, "list", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        sdk.jobs()
