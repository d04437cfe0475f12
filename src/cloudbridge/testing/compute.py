"""``ComputeConformance``: the tests every :class:`~cloudbridge.interfaces.Compute` must pass.

A provider proves its compute by subclassing the class and overriding the ``compute`` fixture
(and, when its jobs need more than a name and a command, ``make_spec``)::

    from cloudbridge.testing.compute import ComputeConformance

    class TestSageMakerCompute(ComputeConformance):
        provider_name = "aws"
        runs_commands = False          # moto completes every training job at once
        supports_logs = False          # ... and writes no logs
        supports_cancel = False        # ... and does not implement StopTrainingJob

        @pytest.fixture
        def compute(self, moto_server):
            return AwsProvider(settings).compute

        @pytest.fixture
        def make_spec(self, tmp_path, s3_bucket):
            def make(run, name="conformance", **fields):
                fields.setdefault("outputs", {"model": f"s3://{s3_bucket}/out"})
                return JobSpec(name=name, run=run, provider="aws", workdir=str(tmp_path), **fields)
            return make

Capabilities are class attributes, so a backend states what it can do instead of skipping tests
ad hoc: ``runs_commands`` (the command really runs and its exit code decides the state),
``supports_logs`` (``logs()`` returns what the command printed), ``supports_follow``
(``logs(follow=True)`` streams and ends when the job ends) and ``supports_cancel`` (a running job
can be cancelled and ends ``CANCELLED``). Tests a backend cannot pass are skipped with the
capability named as the reason. The commands used are class attributes too (POSIX shell by
default) for backends whose jobs run something else.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from cloudbridge.errors import NotFound, StageTimeout
from cloudbridge.interfaces import Compute, Job, JobState, wait_for_state
from cloudbridge.specs import JobSpec

__all__ = ["ComputeConformance"]

MakeSpec = Callable[..., JobSpec]


class ComputeConformance:
    """Pytest base class; override the ``compute`` fixture (see the module docstring)."""

    #: Name of the provider under test (the spec's ``provider``; job ids start with ``<name>-``).
    provider_name: str = "local"
    #: The command really runs: its exit code decides SUCCEEDED/FAILED and it can run for a while.
    runs_commands: bool = True
    #: ``logs()`` returns the lines the command printed.
    supports_logs: bool = True
    #: ``logs(follow=True)`` yields lines while the job runs and stops once it has ended.
    supports_follow: bool = True
    #: ``cancel()`` stops a running job, which then ends ``CANCELLED``.
    supports_cancel: bool = True
    #: Seconds any single job in these tests may take to end.
    wait_timeout: float = 120.0
    #: A command printing :attr:`hello_lines` and exiting 0.
    hello_command: str = "echo cloudbridge-conformance-1 && echo cloudbridge-conformance-2"
    hello_lines: tuple[str, ...] = ("cloudbridge-conformance-1", "cloudbridge-conformance-2")
    #: A command printing a line and exiting with status 3.
    failing_command: str = "echo cloudbridge-about-to-fail && exit 3"
    #: A command printing ``tick-1`` .. ``tick-5`` over about a second.
    ticking_command: str = "for i in 1 2 3 4 5; do echo tick-$i; sleep 0.2; done"
    #: A command that runs much longer than any test waits.
    long_command: str = "echo started && sleep 300"

    # ---- fixtures a provider overrides ---------------------------------------------------------
    @pytest.fixture
    def compute(self) -> Compute:
        """The compute under test; a subclass must override this fixture."""
        raise NotImplementedError("override the `compute` fixture in your ComputeConformance subclass")

    @pytest.fixture
    def make_spec(self, tmp_path: Any) -> MakeSpec:
        """``make_spec(run, name=..., **fields) -> JobSpec`` for this provider."""

        def make(run: str, name: str = "conformance", **fields: Any) -> JobSpec:
            return JobSpec(name=name, run=run, provider=self.provider_name, workdir=str(tmp_path), **fields)

        return make

    @pytest.fixture
    def simple_spec(self, make_spec: MakeSpec) -> JobSpec:
        """A job that prints :attr:`hello_lines` and succeeds."""
        return make_spec(self.hello_command, name="conformance-hello")

    @pytest.fixture
    def unknown_job_id(self) -> str:
        """An id in this provider's format that names no job."""
        return f"{self.provider_name}-0000dead"

    # ---- helpers --------------------------------------------------------------------------------
    def _require(self, capability: str) -> None:
        if not getattr(self, capability):
            pytest.skip(f"{type(self).__name__}.{capability} is False")

    def _wait(self, compute: Compute, job: Job) -> Job:
        return compute.wait(job.id, timeout=self.wait_timeout)

    # ---- tests ----------------------------------------------------------------------------------
    def test_submit_returns_record(self, compute: Compute, simple_spec: JobSpec) -> None:
        """``submit`` returns a ``Job`` with a ``<provider>-`` id, the provider, the spec's name and a state."""
        job = compute.submit(simple_spec)
        assert job.id.startswith(f"{self.provider_name}-"), job.id
        assert job.provider == self.provider_name
        assert job.name == simple_spec.name
        assert isinstance(job.state, JobState)
        assert compute.get(job.id).id == job.id
        self._wait(compute, job)

    def test_submit_wait_succeeds(self, compute: Compute, simple_spec: JobSpec) -> None:
        """A simple job ends ``SUCCEEDED`` with no reason and exit code 0 (or unknown)."""
        job = self._wait(compute, compute.submit(simple_spec))
        assert job.state == JobState.SUCCEEDED, (job.state, job.reason, job.detail)
        assert job.reason is None
        assert job.exit_code in (0, None)
        assert compute.get(job.id).state == JobState.SUCCEEDED

    def test_failing_command_fails_with_reason(self, compute: Compute, make_spec: MakeSpec) -> None:
        """A command exiting 3 ends ``FAILED`` with a ``reason`` and a ``detail`` (exit code 3 if reported)."""
        self._require("runs_commands")
        job = self._wait(compute, compute.submit(make_spec(self.failing_command, name="conformance-fail")))
        assert job.state == JobState.FAILED
        assert isinstance(job.reason, str) and job.reason.strip(), "a FAILED job must say why (Job.reason)"
        assert job.detail, "a FAILED job must carry the provider's detail (Job.detail)"
        if job.exit_code is not None:
            assert job.exit_code == 3

    def test_logs_contain_printed_lines(self, compute: Compute, simple_spec: JobSpec) -> None:
        """``logs`` yields the printed lines, one string per line without newlines."""
        self._require("supports_logs")
        job = self._wait(compute, compute.submit(simple_spec))
        lines = list(compute.logs(job.id))
        assert all(isinstance(line, str) and "\n" not in line for line in lines)
        for expected in self.hello_lines:
            assert any(expected in line for line in lines), (expected, lines)

    def test_failed_job_logs_are_kept(self, compute: Compute, make_spec: MakeSpec) -> None:
        """A failed job's logs stay readable after it ended."""
        self._require("supports_logs")
        self._require("runs_commands")
        job = self._wait(compute, compute.submit(make_spec(self.failing_command, name="conformance-fail-logs")))
        assert any("cloudbridge-about-to-fail" in line for line in compute.logs(job.id))

    def test_follow_logs_end_when_job_ends(self, compute: Compute, make_spec: MakeSpec) -> None:
        """``logs(follow=True)`` streams every line and returns once the job has ended."""
        self._require("supports_follow")
        job = compute.submit(make_spec(self.ticking_command, name="conformance-follow"))
        lines: list[str] = []
        errors: list[BaseException] = []

        def follow() -> None:
            try:
                lines.extend(compute.logs(job.id, follow=True))
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        reader.join(self.wait_timeout)
        assert not reader.is_alive(), "logs(follow=True) kept going after the job ended"
        assert not errors, errors
        assert compute.get(job.id).state.is_terminal, "logs(follow=True) returned before the job ended"
        ticks = [line.strip() for line in lines if line.strip().startswith("tick-")]
        assert ticks == [f"tick-{i}" for i in range(1, 6)], lines

    def test_cancel_running_job(self, compute: Compute, make_spec: MakeSpec) -> None:
        """``cancel`` stops a running job promptly and it ends ``CANCELLED``."""
        self._require("supports_cancel")
        job = compute.submit(make_spec(self.long_command, name="conformance-cancel"))
        wait_for_state(compute, job.id, {JobState.RUNNING}, timeout=self.wait_timeout)
        started = time.monotonic()
        compute.cancel(job.id)
        final = self._wait(compute, job)
        assert final.state == JobState.CANCELLED, (final.state, final.reason, final.detail)
        assert time.monotonic() - started < self.wait_timeout

    def test_cancel_finished_job_keeps_state(self, compute: Compute, simple_spec: JobSpec) -> None:
        """Cancelling a finished job is not an error and keeps its terminal state."""
        job = self._wait(compute, compute.submit(simple_spec))
        after = compute.cancel(job.id)
        assert after.state == job.state
        assert compute.get(job.id).state == job.state

    def test_wait_timeout_raises_stage_timeout(self, compute: Compute, make_spec: MakeSpec) -> None:
        """``wait`` past its timeout raises ``StageTimeout`` with ``stage == 'wait'``."""
        self._require("runs_commands")
        self._require("supports_cancel")
        job = compute.submit(make_spec(self.long_command, name="conformance-wait-timeout"))
        try:
            with pytest.raises(StageTimeout) as info:
                compute.wait(job.id, timeout=0.5)
            assert info.value.stage == "wait"
        finally:
            compute.cancel(job.id)

    def test_get_unknown_id_not_found(self, compute: Compute, unknown_job_id: str) -> None:
        """``get`` of an id that names no job raises ``NotFound``."""
        with pytest.raises(NotFound):
            compute.get(unknown_job_id)

    def test_list_contains_job(self, compute: Compute, simple_spec: JobSpec) -> None:
        """``list`` contains a submitted job, and only jobs of this provider."""
        job = compute.submit(simple_spec)
        listed = compute.list()
        assert job.id in [j.id for j in listed]
        assert all(j.provider == self.provider_name for j in listed)
        self._wait(compute, job)

    def test_job_record_is_json_ready(self, compute: Compute, simple_spec: JobSpec) -> None:
        """``Job.to_dict()`` survives a JSON round trip with its id and state."""
        job = self._wait(compute, compute.submit(simple_spec))
        data = json.loads(json.dumps(job.to_dict()))
        assert data["id"] == job.id and data["state"] == job.state.value
