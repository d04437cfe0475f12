"""The SQLite job store: records, transitions, redaction, events, and several processes at once."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from cloudbridge.errors import ConflictError, NotFound
from cloudbridge.hookspecs import hookimpl
from cloudbridge.jobstore.events import emit
from cloudbridge.jobstore.redact import REDACTED
from cloudbridge.jobstore.store import DB_NAME, JobStore
from cloudbridge.records import Job, JobState


def make_job(job_id: str, state: JobState = JobState.PENDING, provider: str = "local", **fields: object) -> Job:
    return Job(id=job_id, provider=provider, name="n", state=state, **fields)  # type: ignore[arg-type]


def test_store_lives_in_home_and_uses_wal(cb_home: Path) -> None:
    store = JobStore.default()
    store.insert_job(make_job("local-1"))
    assert store.path == cb_home / DB_NAME
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"jobs", "job_events", "local_queue", "local_gpu_allocations", "local_runs"} <= tables


def test_roundtrip_and_listing_order() -> None:
    store = JobStore.default()
    store.insert_job(make_job("local-a", created_at=1.0, metrics={"acc": 0.9}, extra={"k": [1, 2]}))
    store.insert_job(make_job("aws-b", provider="aws", created_at=2.0, native_id="sm-job"))
    job = store.get("local-a")
    assert (job.metrics, job.extra, job.created_at) == ({"acc": 0.9}, {"k": [1, 2]}, 1.0)
    assert [j.id for j in store.list()] == ["aws-b", "local-a"]
    assert [j.id for j in store.list("aws")] == ["aws-b"]
    assert [j.id for j in store.list(states=[JobState.PENDING], limit=1)] == ["aws-b"]
    with pytest.raises(ConflictError):
        store.insert_job(make_job("local-a"))
    with pytest.raises(NotFound, match="local-zzz"):
        store.get("local-zzz")


def test_transition_is_compare_and_set() -> None:
    store = JobStore.default()
    store.insert_job(make_job("local-t"))
    assert store.transition("local-t", JobState.RUNNING, expect=[JobState.STARTING]) is None
    job, previous = store.transition("local-t", JobState.RUNNING, started_at=5.0, extra={"a": 1})
    assert (previous, job.state, job.started_at, job.extra) == (JobState.PENDING, JobState.RUNNING, 5.0, {"a": 1})
    job, _ = store.transition("local-t", JobState.FAILED, reason="r", extra={"b": 2})
    assert job.ended_at is not None and job.extra == {"a": 1, "b": 2}
    assert store.transition("local-t", JobState.SUCCEEDED) is None, "a terminal state is final"
    assert store.get("local-t").state == JobState.FAILED


def test_transition_rolls_back_when_the_extra_step_fails() -> None:
    store = JobStore.default()
    store.insert_job(make_job("local-r"))

    def boom(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO local_gpu_allocations (gpu, job_id, allocated_at) VALUES (0, 'local-r', 0)")
        raise RuntimeError("crash in the middle")

    with pytest.raises(RuntimeError):
        store.transition("local-r", JobState.RUNNING, also=boom)
    assert store.get("local-r").state == JobState.PENDING
    with store.connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM local_gpu_allocations").fetchone()[0] == 0


def test_record_only_moves_forward() -> None:
    store = JobStore.default()
    assert store.record(make_job("aws-1", JobState.RUNNING, provider="aws")) is None
    assert store.record(make_job("aws-1", JobState.PENDING, provider="aws")) is False
    assert store.get("aws-1").state == JobState.RUNNING
    assert store.record(make_job("aws-1", JobState.SUCCEEDED, provider="aws", metrics={"loss": 0.1})) == (
        JobState.RUNNING
    )
    assert store.get("aws-1").metrics == {"loss": 0.1}
    assert store.record(make_job("aws-1", JobState.FAILED, provider="aws", reason="late")) is False
    assert store.get("aws-1").state == JobState.SUCCEEDED and store.get("aws-1").reason is None


def test_secrets_are_redacted_in_the_database_file(cb_home: Path) -> None:
    store = JobStore.default()
    spec = {
        "name": "n", "run": "python train.py",
        "env": {"HF_TOKEN": "hf_s3cr3t", "WANDB_API_KEY": "wandb-s3cr3t", "DB_PASSWORD": "pw-s3cr3t", "LR": "0.1",
                "TOKENIZERS_PARALLELISM": "false"},
        "overrides": {"aws": {"secret_access_key": "aws-s3cr3t", "region": "eu-west-1"}},
    }
    store.insert_job(make_job("local-s", extra={"auth_token": "x-s3cr3t"}), spec)
    stored = store.spec("local-s")
    assert stored["env"] == {"HF_TOKEN": REDACTED, "WANDB_API_KEY": REDACTED, "DB_PASSWORD": REDACTED, "LR": "0.1",
                             "TOKENIZERS_PARALLELISM": "false"}
    assert stored["overrides"]["aws"] == {"secret_access_key": REDACTED, "region": "eu-west-1"}
    raw = b"".join(p.read_bytes() for p in cb_home.glob(DB_NAME + "*"))
    assert b"s3cr3t" not in raw


def test_emit_appends_event_and_survives_a_broken_observer(caplog: pytest.LogCaptureFixture) -> None:
    from cloudbridge.plugins import get_plugin_manager

    seen = []

    class Broken:
        @hookimpl
        def cloudbridge_job_event(self, event: object) -> None:
            raise RuntimeError("observer bug")

    class Recorder:
        @hookimpl
        def cloudbridge_job_event(self, event: object) -> None:
            seen.append(event)

    pm = get_plugin_manager()
    pm.register(Broken(), name="broken-observer")
    pm.register(Recorder(), name="recorder")
    store = JobStore.default()
    job = make_job("local-e", JobState.FAILED, reason="budget exceeded", detail="d")
    store.insert_job(job)
    event = emit(job, JobState.RUNNING, cost=1.5)
    assert [e.state for e in seen] == ["FAILED"]
    assert "observer bug" in caplog.text
    [row] = store.events("local-e")
    assert (row["previous"], row["state"], row["reason"], row["extra"]) == ("RUNNING", "FAILED", "budget exceeded",
                                                                             {"cost": 1.5})
    assert row["time"] == event.time


def _writer(path: str, worker: int, count: int, queue: multiprocessing.Queue) -> None:
    try:
        store = JobStore(path)
        for i in range(count):
            job_id = f"local-{worker}-{i}"
            store.insert_job(make_job(job_id), {"name": "n", "run": "x", "env": {"API_KEY": "k"}})
            store.transition(job_id, JobState.RUNNING)
            store.update(job_id, metrics={"i": i}, extra={"worker": worker})
            store.transition(job_id, JobState.SUCCEEDED, exit_code=0)
            store.record(make_job(f"aws-{worker}-{i}", JobState.RUNNING, provider="aws"))
        queue.put(None)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        queue.put(repr(exc))


def test_several_processes_write_at_once(cb_home: Path) -> None:
    path = str(cb_home / DB_NAME)
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    workers, count = 4, 25
    procs = [ctx.Process(target=_writer, args=(path, w, count, results)) for w in range(workers)]
    for proc in procs:
        proc.start()
    errors = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)
    assert errors == [None] * workers
    store = JobStore(path)
    local = store.list("local")
    assert len(local) == workers * count and len(store.list("aws")) == workers * count
    assert all(j.state == JobState.SUCCEEDED and j.exit_code == 0 for j in local)
    expected = {(w, i) for w in range(workers) for i in range(count)}
    assert {(j.extra["worker"], j.metrics["i"]) for j in local} == expected
    assert json.loads(json.dumps([j.to_dict() for j in local]))
