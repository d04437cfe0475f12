"""Error mapping (one place, raised ``from`` the SDK error) and the faults the Vertex AI fake injects,
seen through the real SDK: quota (429), permission (403), unavailable (503, retried), preempted spot."""

from __future__ import annotations

from typing import Any

import pytest
from cloudbridge_gcp.errors import gcp_errors, retry, translate

from cloudbridge.errors import (
    AuthenticationError,
    ConflictError,
    InvalidSpec,
    NotFound,
    QuotaExceeded,
    TransientError,
)


@pytest.mark.parametrize(("name", "expected"), [
    ("PermissionDenied", AuthenticationError), ("Forbidden", AuthenticationError),
    ("Unauthenticated", AuthenticationError), ("Unauthorized", AuthenticationError),
    ("ResourceExhausted", QuotaExceeded), ("TooManyRequests", QuotaExceeded),
    ("ServiceUnavailable", TransientError), ("DeadlineExceeded", TransientError),
    ("InternalServerError", TransientError), ("InvalidArgument", InvalidSpec), ("BadRequest", InvalidSpec),
    ("NotFound", NotFound), ("AlreadyExists", ConflictError), ("Conflict", ConflictError),
])
def test_google_errors_become_cloudbridge_errors_from_the_cause(name: str, expected: type) -> None:
    from google.api_core import exceptions as gx

    cause = getattr(gx, name)("the service said no")
    with pytest.raises(expected) as info, gcp_errors("do something", resource="gs://b/k"):
        raise cause
    assert info.value.__cause__ is cause
    assert "\n" not in str(info.value)


def test_permission_names_the_role_and_adc_names_the_command() -> None:
    from google.api_core import exceptions as gx
    from google.auth import exceptions as ga

    denied = translate(gx.PermissionDenied("denied"), "create the job")
    assert "roles/aiplatform.user" in str(denied)
    storage = translate(gx.Forbidden("denied"), "upload", service="storage")
    assert "roles/storage.objectAdmin" in str(storage)
    assert "gcloud auth application-default login" in str(translate(ga.DefaultCredentialsError("none"), "x"))


def test_retry_retries_unavailable_and_deadline_but_not_quota() -> None:
    from google.api_core import exceptions as gx

    policy = retry(5.0)
    assert policy._predicate(gx.ServiceUnavailable("x")) and policy._predicate(gx.DeadlineExceeded("x"))
    assert not policy._predicate(gx.ResourceExhausted("x")) and not policy._predicate(gx.PermissionDenied("x"))
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise gx.ServiceUnavailable("try again")
        return "ok"

    assert policy(flaky)() == "ok" and len(calls) == 3


@pytest.mark.parametrize(("kind", "expected", "words"), [
    ("quota", QuotaExceeded, "Quota exceeded"),
    ("permission", AuthenticationError, "roles/aiplatform.user"),
])
def test_injected_create_faults_through_the_sdk(vertex_provider: Any, vertex: Any, tmp_path: Any, bucket: str,
                                                kind: str, expected: type, words: str) -> None:
    from cloudbridge.specs import JobSpec

    (tmp_path / "train.py").write_text("print(1)\n")
    spec = JobSpec(name="faulty", run="python train.py", provider="gcp", workdir=str(tmp_path),
                   outputs={"model": f"gs://{bucket}/out"})
    before = len(vertex.jobs)
    vertex.inject(kind, r"POST .*/customJobs$")
    with pytest.raises(expected) as info:
        vertex_provider.compute.submit(spec)
    assert words in str(info.value) and "the code package stays at gs://" in str(info.value)
    assert len(vertex.jobs) == before, "nothing was created"


def test_unavailable_is_retried_by_the_sdk_call(vertex_provider: Any, vertex: Any) -> None:
    vertex.inject("unavailable", r"GET .*/customJobs$", times=2)
    assert vertex_provider.compute.list() is not None
    assert not [f for f in vertex.faults if f.kind == "unavailable" and f.times > 0], "both faults were consumed"


def test_a_preempted_spot_worker_is_spot_reclaimed_and_restarted(vertex_provider: Any, vertex: Any, tmp_path: Any,
                                                               bucket: str) -> None:
    from cloudbridge.specs import JobSpec

    spec = JobSpec(name="spotty", run="sleep 30", provider="gcp", workdir=str(tmp_path), distribution="none",
                   outputs={"model": f"gs://{bucket}/out"}, checkpoints=f"gs://{bucket}/ckpt",
                   resources={"spot": True, "max_restarts": 1, "nodes": 2})
    vertex.inject("preempt", after=0.5)
    compute = vertex_provider.compute
    job = compute.submit(spec)
    deadline = __import__("time").monotonic() + 60
    while compute.get(job.id).extra.get("restarts") != 1:
        assert __import__("time").monotonic() < deadline, compute.get(job.id)
        __import__("time").sleep(0.3)
    record = compute.get(job.id)
    assert record.attempts[0]["reason"] == "spot reclaimed", record.attempts
    assert "workerpool1-0 was preempted" in (compute.adapter.describe(job.native_id).message or "")
    compute.cancel(job.id)


def test_the_fake_moves_through_vertex_states_and_fails_with_vertex_error_shape(
        vertex_provider: Any, vertex: Any, tmp_path: Any, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """QUEUED -> PENDING -> RUNNING -> SUCCEEDED for a job that works; FAILED with ``error {code, message}``
    (code 3, Vertex's "non-zero status" wording) for one that exits 3 (issue 15.4)."""
    from cloudbridge.records import JobState
    from cloudbridge.specs import JobSpec
    from cloudbridge.testing.vertex_runner import JobRun

    seen: dict[str, list[str]] = {}
    original = JobRun._set

    def record(self: Any, state: str, error: Any = None) -> None:
        seen.setdefault(self.job["displayName"], [self.job["state"]]).append(state)
        original(self, state, error)

    monkeypatch.setattr(JobRun, "_set", record)
    compute = vertex_provider.compute
    ends = {}
    for name, run in (("works", "true"), ("exits-3", "exit 3")):
        spec = JobSpec(name=name, run=run, provider="gcp", workdir=str(tmp_path), distribution="none",
                       outputs={"model": f"gs://{bucket}/out/{name}"})
        ends[name] = compute.wait(compute.submit(spec).id, 90)
    works, fails = ends["works"], ends["exits-3"]
    assert works.state is JobState.SUCCEEDED and fails.state is JobState.FAILED
    assert seen[works.native_id] == ["JOB_STATE_QUEUED", "JOB_STATE_PENDING", "JOB_STATE_RUNNING",
                                     "JOB_STATE_SUCCEEDED"]
    error = next(j for j in vertex.jobs.values() if j["displayName"] == fails.native_id)["error"]
    assert error["code"] == 3 and "non-zero status of 3" in error["message"], error
    assert fails.reason == "non-zero exit (code 3)", fails.reason
