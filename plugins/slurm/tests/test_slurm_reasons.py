"""Slurm's end states as cloudbridge reasons, and restarts after preemption: the adapter's translation, pure
(a job.json and a Slurm record in, a Job out, through the managed core's own reading code)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloudbridge_slurm.adapter import SlurmAdapter
from cloudbridge_slurm.runner import Runner
from cloudbridge_slurm.settings import SlurmSettings
from cloudbridge_slurm.states import SlurmRecord
from cloudbridge_slurm.storage import SlurmStorage

from cloudbridge.managed.limits import ATTEMPT_TAG, LIMITS_TAG, RESTART_OF_TAG, Limits
from cloudbridge.managed.reading import job_from_snapshot
from cloudbridge.records import JobState


@pytest.fixture
def adapter(tmp_path: Path) -> SlurmAdapter:
    runner = Runner(SlurmSettings(staging_dir=str(tmp_path / "staging")))
    return SlurmAdapter(runner, SlurmStorage(runner))


def _meta(adapter: SlurmAdapter, **spec: object) -> dict[str, object]:
    from cloudbridge.managed.adapter import Placement
    from cloudbridge.specs import JobSpec

    job = JobSpec(name="j", provider="slurm", workdir=None, run="python train.py", distribution="accelerate",
                  **spec)  # type: ignore[arg-type]
    limits = Limits(max_runtime=3600, max_restarts=2)
    tags = {"cloudbridge:job-id": "slurm-j-1", "cloudbridge:name": "j", LIMITS_TAG: limits.to_tag()}
    request = adapter._request(job, Placement("debug", None, 1, True), limits, code_uri="slurm://staging/code/w.tgz",
                               name="j-1", first="j-1", tags=tags, run_cap=3600)
    return {"name": "j-1", "slurm_id": "42", "tags": tags, "request": request, "created": 1.0}


@pytest.mark.parametrize(("state", "extra", "want_state", "reason"), [
    ("COMPLETED", {"exit_code": 0}, JobState.SUCCEEDED, None),
    ("FAILED", {"exit_code": 3}, JobState.FAILED, "non-zero exit (code 3)"),
    ("FAILED", {"exit_code": 0, "signal": 9}, JobState.FAILED, "failed"),
    ("OUT_OF_MEMORY", {"exit_code": 0}, JobState.FAILED, "out of memory"),
    ("FAILED", {"exit_code": 1, "derived_signal": 125}, JobState.FAILED, "out of memory"),  # an srun step's OOM
    ("NODE_FAIL", {"nodes": "gpu07"}, JobState.FAILED, "node failure"),
    ("TIMEOUT", {}, JobState.FAILED, "timed out: running stage exceeded max_runtime 1h"),
    ("PREEMPTED", {}, JobState.FAILED, "spot reclaimed"),
    ("CANCELLED", {}, JobState.CANCELLED, None),
    ("PENDING", {}, JobState.PENDING, None),
    ("REQUEUED", {"restarts": 1}, JobState.PENDING, None),
])
def test_end_states_read_as_neutral_reasons(adapter: SlurmAdapter, state: str, extra: dict[str, object],
                                            want_state: JobState, reason: str | None) -> None:
    meta = _meta(adapter)
    record = SlurmRecord("42", state, submit_time=10.0, start_time=11.0, end_time=20.0, **extra)  # type: ignore[arg-type]
    snap = adapter.snapshot(meta, record)
    job = job_from_snapshot(adapter, snap, Limits.from_tag(snap.tags[LIMITS_TAG]))
    assert (job.state, job.reason) == (want_state, reason), job.detail
    if state == "NODE_FAIL":
        assert "gpu07" in (job.detail or "")
    if state == "TIMEOUT":
        assert "--time=0-01:00:00" in (job.detail or "") and snap.limit_stop == "runtime"
    if state == "PREEMPTED":
        assert snap.limit_stop == "spot_wait" and snap.interruptions == 1
    if state == "REQUEUED":  # Slurm requeued a preempted --requeue job itself: it ran, so no start_timeout
        assert not snap.provisioning and snap.interruptions == 1


def test_a_restart_keeps_spec_code_and_checkpoints_with_the_time_left(adapter: SlurmAdapter) -> None:
    base = _meta(adapter, resources={"spot": True, "max_restarts": 2}, checkpoints="slurm://staging/ck/j")["request"]
    limits = Limits(max_runtime=3600, max_restarts=2)
    restart = adapter.restart_request(base, 1, limits, used=600.0)
    assert restart["name"] == "j-1-r1" and restart["first"] == "j-1"
    assert restart["tags"][ATTEMPT_TAG] == "2" and restart["tags"][RESTART_OF_TAG] == "j-1"
    assert restart["run_cap"] == 3000 and "#SBATCH --time=0-00:50:00" in restart["script"]
    assert "#SBATCH --job-name=j-1-r1" in restart["script"] and "#SBATCH --requeue" in restart["script"]
    assert f"export CB_CHECKPOINT_DIR={adapter.storage.root}/ck/j" in restart["script"]
    assert "export CB_JOB_ID=slurm-j-1" in restart["script"], "the cloudbridge id stays the first attempt's"
    assert "/code/w.tgz" in restart["script"]
