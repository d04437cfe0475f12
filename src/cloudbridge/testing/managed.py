"""``ManagedComputeConformance``: what every managed-training plugin's compute must do.

A plugin built on :class:`~cloudbridge.managed.compute.ManagedCompute` subclasses the class and
overrides four fixtures:

* ``managed_compute`` -- a :class:`ManagedCompute` on the plugin's emulator;
* ``other_process`` -- a callable returning a *fresh* :class:`ManagedCompute` on the same emulator
  (new adapter, new clients, no caches): what another ``cloudbridge`` process would see;
* ``driver`` -- a :class:`ManagedDriver`: the emulator's back door that moves jobs between states
  the way the real service would;
* ``make_spec`` -- ``make_spec(name=..., **fields) -> JobSpec`` for this provider: a workdir and
  priced resources; ``fields["resources"]`` is merged into those default resources;
* ``checkpoints_uri`` -- a checkpoint location the service accepts (for spot restarts).

It checks the core's promises through the plugin's adapter: the budget becoming the service's
run-time cap, ``start_timeout`` enforced by a read from another process, a spot restart within the
remaining budget and run time, every failure reason, one event per transition, no orphan after a
failed create -- and that the adapter keeps the contract (:func:`check_snapshot`), naming the
method and field it got wrong.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import pytest

from cloudbridge.errors import StageTimeout
from cloudbridge.managed.adapter import CHECK_CODE_URI, ManagedAdapter, Snapshot
from cloudbridge.managed.compute import ManagedCompute, estimate_hourly
from cloudbridge.records import JobState
from cloudbridge.specs import JobSpec

__all__ = ["ManagedComputeConformance", "ManagedDriver", "check_snapshot"]

_TYPES: dict[str, tuple[type, ...]] = {
    "native_id": (str,), "status": (str,), "stage": (str, type(None)), "message": (str, type(None)),
    "created_at": (float, int, type(None)), "started_at": (float, int, type(None)),
    "ended_at": (float, int, type(None)), "modified_at": (float, int, type(None)),
    "tags": (dict, type(None)), "provisioning": (bool,), "stopped": (bool,), "limit_stop": (str, type(None)),
    "runtime_cap": (int, type(None)), "used_seconds": (float, int), "interruptions": (int,),
    "name": (str, type(None)), "outputs_uri": (str, type(None)), "metrics": (dict,), "extra": (dict,),
}


def check_snapshot(adapter: ManagedAdapter, snap: Any, method: str = "describe") -> Snapshot:
    """``snap`` if it is a well-formed :class:`Snapshot`; else ``AssertionError`` naming method and field."""
    where = f"{type(adapter).__name__}.{method}"
    assert isinstance(snap, Snapshot), f"{where}: must return a Snapshot, got {type(snap).__name__}"
    for f in fields(Snapshot):
        value = getattr(snap, f.name)
        allowed = _TYPES.get(f.name)
        if allowed and not isinstance(value, allowed):
            names = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
            raise AssertionError(f"{where}: Snapshot.{f.name} must be {names}, got {type(value).__name__} "
                                 f"{value!r:.60}")
    assert snap.native_id, f"{where}: Snapshot.native_id is empty"
    assert snap.limit_stop in (None, "runtime", "spot_wait"), (
        f"{where}: Snapshot.limit_stop must be 'runtime', 'spot_wait' or None, got {snap.limit_stop!r}")
    for key, value in (snap.tags or {}).items():
        assert isinstance(key, str) and isinstance(value, str), (
            f"{where}: Snapshot.tags must map str to str (decoded), got {key!r}: {value!r}")
    for when in ("created_at", "started_at", "ended_at", "modified_at"):
        value = getattr(snap, when)
        assert value is None or value > 1e9, f"{where}: Snapshot.{when} must be epoch seconds, got {value!r}"
    return snap


class ManagedDriver(ABC):
    """An emulator's back door: puts a job in a state, as the service would. One per plugin's tests."""

    #: A service failure message -> the neutral reason it must read as (one per rule of the adapter).
    failure_messages: dict[str, str] = {}

    @abstractmethod
    def provisioning(self, native_id: str) -> None:
        """The job waits for machines; its code has not run."""

    @abstractmethod
    def running(self, native_id: str) -> None:
        """The job's code runs."""

    @abstractmethod
    def failed(self, native_id: str, message: str) -> None:
        """The job failed with the service's ``message``."""

    @abstractmethod
    def hit_runtime_cap(self, native_id: str, used: int) -> None:
        """The service stopped the job at its run-time cap after ``used`` seconds."""

    @abstractmethod
    def spot_gave_up(self, native_id: str, interruptions: int, used: int) -> None:
        """The service stopped waiting for spot capacity (after ``interruptions`` reclaims, ``used`` s run)."""

    @abstractmethod
    def age(self, native_id: str, seconds: float) -> None:
        """Make the job look created ``seconds`` earlier than it was."""

    @abstractmethod
    def runtime_cap(self, native_id: str) -> int:
        """The run-time cap (seconds) the service holds for the job."""

    @abstractmethod
    def was_stopped(self, native_id: str) -> bool:
        """True once a stop request for the job reached the service."""


class ManagedComputeConformance:
    """Subclass with the four fixtures described in the module docstring."""

    @pytest.fixture
    def managed_compute(self) -> ManagedCompute:
        raise NotImplementedError("override the managed_compute fixture")

    @pytest.fixture
    def other_process(self) -> Callable[[], ManagedCompute]:
        raise NotImplementedError("override the other_process fixture")

    @pytest.fixture
    def driver(self) -> ManagedDriver:
        raise NotImplementedError("override the driver fixture")

    @pytest.fixture
    def make_spec(self) -> Callable[..., JobSpec]:
        raise NotImplementedError("override the make_spec fixture")

    @pytest.fixture
    def checkpoints_uri(self) -> str:
        raise NotImplementedError("override the checkpoints_uri fixture")

    @pytest.fixture
    def lost_reply_error(self) -> Exception:
        """An error ``create`` raises when its reply was lost (``may_have_created`` is True for it)."""
        return StageTimeout("the create call's reply was lost", stage="submit")

    @pytest.fixture
    def os_process_reader(self) -> Callable[[str], list[str]] | None:
        """Optional: ``job_id -> argv`` of a separate OS process that reads the job once and prints
        ``Job.to_dict()`` as JSON. ``None`` (the default) skips the test that needs one."""
        return None

    @pytest.fixture
    def job_home(self, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
        """An empty ``CLOUDBRIDGE_HOME`` (job store) for event tests."""
        monkeypatch.setenv("CLOUDBRIDGE_HOME", str(tmp_path / "cb-home"))
        return tmp_path / "cb-home"

    # ---- the contract ----------------------------------------------------------------------------
    def test_adapter_keeps_the_contract(self, managed_compute: ManagedCompute,
                                        make_spec: Callable[..., JobSpec]) -> None:
        adapter = managed_compute.adapter
        name = type(adapter).__name__
        for key, state in adapter.states.items():
            assert isinstance(state, JobState), f"{name}.states[{key!r}]: must be a JobState, got {state!r}"
        spec = make_spec(name="contract")
        first = managed_compute.prepare(spec, name="contract-1")[1]
        again = managed_compute.prepare(spec, name="contract-1")[1]
        assert first == again, f"{name}.build_request: two calls with the same arguments built different requests"
        job = managed_compute.submit(spec)
        assert isinstance(job.native_id, str) and job.native_id, f"{name}.create: must return the native id"
        check_snapshot(adapter, adapter.describe(job.native_id))
        listed = list(adapter.list_jobs())
        for snap in listed:
            check_snapshot(adapter, snap, "list_jobs")
        assert job.native_id in [s.native_id for s in listed], f"{name}.list_jobs: the new job is missing"
        assert adapter.native_id_of(job.id) == job.native_id, f"{name}.native_id_of: does not invert the job id"
        assert CHECK_CODE_URI not in str(adapter.describe(job.native_id).extra), "validation leaked into the job"

    # ---- budget and run time ---------------------------------------------------------------------
    def test_budget_becomes_the_run_time_cap(self, managed_compute: ManagedCompute, driver: ManagedDriver,
                                             make_spec: Callable[..., JobSpec]) -> None:
        adapter = managed_compute.adapter
        probe = make_spec(name="budget")
        hourly = estimate_hourly(probe, adapter.provider, adapter.place(probe), adapter.catalog)
        assert hourly, f"{type(adapter).__name__}.place: the placement has no catalog price (budgets need one)"
        max_cost = round(hourly * 2, 2)
        job = managed_compute.submit(make_spec(name="budget", resources={"max_cost": max_cost}))
        cap = math.floor(max_cost / hourly * 3600)
        assert job.extra["budget_cap_seconds"] == cap
        assert driver.runtime_cap(job.native_id) == cap, "the service must hold the budget's cap"
        driver.hit_runtime_cap(job.native_id, used=cap)
        stopped = managed_compute.get(job.id)
        assert (stopped.state, stopped.reason) == (JobState.FAILED, "budget exceeded"), stopped.detail
        assert f"${max_cost:.2f}" in (stopped.detail or ""), "the detail names the budget"

    def test_max_runtime_stop_is_a_timeout(self, managed_compute: ManagedCompute, driver: ManagedDriver,
                                           make_spec: Callable[..., JobSpec]) -> None:
        job = managed_compute.submit(make_spec(name="runtime", resources={"max_runtime": "2h"}))
        assert driver.runtime_cap(job.native_id) == 7200
        driver.running(job.native_id)
        assert managed_compute.get(job.id).state is JobState.RUNNING
        driver.hit_runtime_cap(job.native_id, used=7200)
        stopped = managed_compute.get(job.id)
        assert (stopped.state, stopped.reason) == (JobState.FAILED, "timed out: running stage exceeded max_runtime 2h")

    # ---- start_timeout -----------------------------------------------------------------------------
    def test_start_timeout_is_enforced_by_a_read_from_another_process(
        self, managed_compute: ManagedCompute, other_process: Callable[[], ManagedCompute], driver: ManagedDriver,
        make_spec: Callable[..., JobSpec],
    ) -> None:
        job = managed_compute.submit(make_spec(name="slow-start", resources={"start_timeout": "15m"}))
        driver.provisioning(job.native_id)
        driver.age(job.native_id, 60)
        assert other_process().get(job.id).state in (JobState.PENDING, JobState.STARTING)
        assert not driver.was_stopped(job.native_id), "within start_timeout the job is left alone"
        driver.age(job.native_id, 15 * 60)
        failed = other_process().get(job.id)
        assert driver.was_stopped(job.native_id), "the other process stopped the job"
        assert (failed.state, failed.reason) == (JobState.FAILED, "timed out: provisioning exceeded start_timeout 15m")
        again = managed_compute.get(job.id)
        assert (again.state, again.reason) == (failed.state, failed.reason), "every process reads the same"

    def test_start_timeout_is_enforced_by_a_separate_os_process(
        self, managed_compute: ManagedCompute, driver: ManagedDriver, make_spec: Callable[..., JobSpec],
        os_process_reader: Callable[[str], list[str]] | None,
    ) -> None:
        import json
        import subprocess

        if os_process_reader is None:
            pytest.skip("no os_process_reader: the emulator cannot be read from another OS process")
        job = managed_compute.submit(make_spec(name="slow-start-os", resources={"start_timeout": "15m"}))
        driver.provisioning(job.native_id)
        driver.age(job.native_id, 16 * 60)
        done = subprocess.run(os_process_reader(job.id), capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        seen = json.loads(done.stdout.strip().splitlines()[-1])
        assert (seen["state"], seen["reason"]) == ("FAILED", "timed out: provisioning exceeded start_timeout 15m")
        assert driver.was_stopped(job.native_id), "the other OS process stopped the job"
        assert managed_compute.get(job.id).reason == seen["reason"], "this process reads the same"

    # ---- spot restarts -----------------------------------------------------------------------------
    def test_spot_restart_within_the_remaining_run_time(
        self, managed_compute: ManagedCompute, other_process: Callable[[], ManagedCompute], driver: ManagedDriver,
        make_spec: Callable[..., JobSpec], checkpoints_uri: str,
    ) -> None:
        job = managed_compute.submit(make_spec(name="spot", checkpoints=checkpoints_uri, resources={
            "spot": True, "max_restarts": 1, "max_runtime": "2h"}))
        driver.spot_gave_up(job.native_id, interruptions=2, used=1800)
        restarted = other_process().get(job.id)
        assert len(restarted.attempts) == 2 and restarted.attempts[0]["reason"] == "spot reclaimed"
        assert not restarted.state.is_terminal and restarted.extra.get("restarts") == 1
        second = restarted.attempts[1]["native_id"]
        assert second != job.native_id and restarted.id == job.id
        assert driver.runtime_cap(second) == 7200 - 1800, "the restart gets what is left of max_runtime"
        assert len(managed_compute.get(job.id).attempts) == 2, "another read does not restart twice"
        driver.spot_gave_up(second, interruptions=0, used=600)
        final = managed_compute.get(job.id)
        assert (final.state, final.reason) == (JobState.FAILED, "no spot capacity")
        assert "no restart left (max_restarts 1 used)" in (final.detail or "")

    def test_no_restart_when_too_little_run_time_is_left(
        self, managed_compute: ManagedCompute, driver: ManagedDriver, make_spec: Callable[..., JobSpec],
        checkpoints_uri: str,
    ) -> None:
        job = managed_compute.submit(make_spec(name="spot-late", checkpoints=checkpoints_uri, resources={
            "spot": True, "max_restarts": 2, "max_runtime": "1h"}))
        driver.spot_gave_up(job.native_id, interruptions=1, used=3600 - 30)
        failed = managed_compute.get(job.id)
        assert (failed.state, failed.reason, len(failed.attempts)) == (JobState.FAILED, "spot reclaimed", 1)
        assert "not restarted: only 30s of max_runtime left" in (failed.detail or "")

    # ---- failure reasons ---------------------------------------------------------------------------
    def test_each_failure_message_has_its_reason(
        self, managed_compute: ManagedCompute, other_process: Callable[[], ManagedCompute], driver: ManagedDriver,
        make_spec: Callable[..., JobSpec],
    ) -> None:
        assert driver.failure_messages, "the driver lists the service's failure messages"
        job = managed_compute.submit(make_spec(name="fails"))
        for message, reason in driver.failure_messages.items():
            driver.failed(job.native_id, message)
            failed = other_process().get(job.id)
            assert (failed.state, failed.reason) == (JobState.FAILED, reason), f"{message!r}"
            assert (failed.detail or "").startswith(message), "the service's own message comes first"
            assert failed.attempts[-1]["reason"] == reason

    # ---- no orphans --------------------------------------------------------------------------------
    def test_a_failed_create_leaves_no_orphan_and_names_the_package(
        self, managed_compute: ManagedCompute, driver: ManagedDriver, make_spec: Callable[..., JobSpec],
        lost_reply_error: Exception, monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        adapter, created = managed_compute.adapter, []
        real_create = adapter.create

        def create_then_lose_the_reply(request: Any) -> str:
            created.append(real_create(request))
            raise lost_reply_error

        monkeypatch.setattr(adapter, "create", create_then_lose_the_reply)
        with pytest.raises(type(lost_reply_error)) as info:
            managed_compute.submit(make_spec(name="orphan"))
        text = str(info.value)
        assert created and driver.was_stopped(created[0]), "the job created anyway was stopped"
        assert "it was created anyway and has been stopped" in text, text
        assert "the code package stays at " in text, text

    # ---- events ------------------------------------------------------------------------------------
    def test_one_event_per_transition_across_processes(
        self, managed_compute: ManagedCompute, other_process: Callable[[], ManagedCompute], driver: ManagedDriver,
        make_spec: Callable[..., JobSpec], job_home: Any,
    ) -> None:
        from cloudbridge.jobstore.events import observe
        from cloudbridge.jobstore.store import JobStore

        spec = make_spec(name="events")
        job = managed_compute.submit(spec)
        observe(job, spec)
        readers = [other_process() for _ in range(3)]

        def read_all() -> None:
            threads = [threading.Thread(target=lambda c=c: observe(c.get(job.id))) for c in readers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        driver.running(job.native_id)
        read_all()
        read_all()
        driver.failed(job.native_id, next(iter(driver.failure_messages)))
        read_all()
        states = [e["state"] for e in JobStore.default().events(job.id)]
        assert states == [job.state.value, "RUNNING", "FAILED"], states

    def test_one_restart_event_when_readers_race(
        self, managed_compute: ManagedCompute, other_process: Callable[[], ManagedCompute], driver: ManagedDriver,
        make_spec: Callable[..., JobSpec], checkpoints_uri: str, job_home: Any,
    ) -> None:
        from cloudbridge.jobstore.events import observe
        from cloudbridge.jobstore.store import JobStore

        spec = make_spec(name="race", checkpoints=checkpoints_uri, resources={"spot": True, "max_restarts": 1})
        job = managed_compute.submit(spec)
        observe(job, spec)
        driver.running(job.native_id)
        observe(managed_compute.get(job.id))
        driver.spot_gave_up(job.native_id, interruptions=1, used=600)
        readers = [other_process() for _ in range(3)]
        threads = [threading.Thread(target=lambda c=c: observe(c.get(job.id))) for c in readers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        observe(managed_compute.get(job.id))
        events = JobStore.default().events(job.id)
        restarts = [e for e in events if e["extra"].get("event") == "restarted"]
        assert len(restarts) == 1, events
        assert len(managed_compute.get(job.id).attempts) == 2, "racing readers created one restart"

